"""The remote Meter against a real `payoff serve` on loopback: outages, restarts, crashes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

import payoff
from api_support import free_port, live_server, prepare_ledger, start_server
from payoff.problems import Problem
from payoff.records import record_id

# Every test here starts processes or a live server: seconds each.
pytestmark = pytest.mark.slow


def stored(db: Path, table: str = "events") -> Counter[str]:
    with sqlite3.connect(db) as conn:
        return Counter(row[0] for row in conn.execute(f"SELECT id FROM {table}"))


def capture_ids(meter: payoff.Meter) -> list[str]:
    ids: list[str] = []
    submit = meter.sink.submit

    def spy(line: bytes) -> None:
        submit(line)
        if b'"record":"usage"' in line:
            ids.append(str(record_id(line)))

    meter.sink.submit = spy  # type: ignore[method-assign]
    return ids


def test_every_record_arrives_exactly_once_across_a_server_kill_and_restart(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    server = start_server(db, log)
    port = int(server.url.rsplit(":", 1)[1])
    meter = payoff.Meter(
        server.url, api_key=keys.ingest, spool=tmp_path / "spool", spool_interval_s=0.02,
        batch_records=50, timeout_s=2, close_at_exit=False,
    )  # fmt: skip
    ids = capture_ids(meter)
    with meter.task(customer="acme", type="support.ticket") as task:
        for step in range(300):
            task.tool("lookup", cost="0.001")
            if step == 100:
                assert meter.flush(timeout_s=30)
                server.kill()  # SIGKILL mid-run: no goodbye
            if step == 200:
                server = start_server(db, log, port=port)
        outcome = task.outcome("ticket.resolved", value="1.00")
    try:
        assert meter.flush(timeout_s=60), "the restarted server should take everything"
        counts = stored(db)
        assert len(ids) == 300 and all(counts[i] == 1 for i in ids)
        assert stored(db, "outcomes")[outcome] == 1
        summary = payoff.list_tasks(payoff.open_store(db), "acme")[0]
        assert (summary.id, summary.status, summary.steps) == (task.id, "completed", 300)
        assert summary.cost_nanousd == task.cost_nanousd == 300_000_000
        assert meter.dead_letters.count == 0
    finally:
        assert meter.close()
        server.process.terminate()
        server.process.wait(timeout=10)
    assert list((tmp_path / "spool").glob("spool-*")) == []  # delivered: nothing left behind


def test_refused_records_go_to_the_dead_letter_file_and_the_callback(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    problems: list[Problem] = []
    with live_server(db, log) as server:
        meter = payoff.Meter(
            server.url, api_key=keys.ingest, spool=tmp_path / "spool",
            on_problem=problems.append, close_at_exit=False,
        )  # fmt: skip
        with meter.task(customer="acme") as task:
            task.outcome("ticket.resolved", id="o1", value="1.00")
            task.outcome("ticket.resolved", id="o1", value="2.00")  # same id, other body
        assert meter.close()
        refusals: list[Problem] = []
        wrong_key = payoff.Meter(
            server.url, api_key="not-a-key", spool=tmp_path / "spool2",
            on_problem=refusals.append, close_at_exit=False,
        )  # fmt: skip
        with wrong_key.task(customer="acme"):
            pass
        # A wrong key is a configuration error, not a fault of the records: they stay
        # spooled for a Meter with the right key, and the problem is reported once.
        assert not wrong_key.close(timeout_s=1.5)
    assert [(p.id, p.status) for p in problems] == [("o1", "conflict")]
    letters = (tmp_path / "spool" / "dead-letter.jsonl").read_text().splitlines()
    assert len(letters) == 1 and '"value":"2.00"' in letters[0]
    assert not (tmp_path / "spool2" / "dead-letter.jsonl").exists()
    assert [(p.status, p.reason[:8]) for p in refusals] == [("refused", "HTTP 401")]
    spooled = b"".join(path.read_bytes() for path in (tmp_path / "spool2").glob("spool-*.jsonl"))
    assert spooled.count(b"\n") == 2  # the task's open and completed records, kept


def test_a_crashed_agents_spool_is_sent_by_the_next_meter(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    port, spool = free_port(), tmp_path / "spool"
    agent = textwrap.dedent(
        f"""
        import os, signal, time, payoff
        meter = payoff.Meter("http://127.0.0.1:{port}", api_key="{keys.ingest}",
                             spool={str(spool)!r}, spool_interval_s=0.05, timeout_s=1)
        task = meter.task(customer="acme", type="crash")
        task.open()
        for _ in range(500):
            task.tool("lookup", cost="0.001")
        time.sleep(0.5)  # more than the spool interval: everything is on disk
        print(task.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    crashed = subprocess.run(
        [sys.executable, "-c", agent], capture_output=True, text=True, timeout=60
    )
    assert crashed.returncode == -9, crashed.stderr
    task_id = crashed.stdout.strip()
    server = start_server(db, log, port=port)
    try:
        meter = payoff.Meter(server.url, api_key=keys.ingest, spool=spool, close_at_exit=False)
        assert meter.flush(timeout_s=60)
        assert meter.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
    summary = payoff.list_tasks(payoff.open_store(db), "acme")[0]
    assert (summary.id, summary.steps, summary.status) == (task_id, 500, "open")
    assert list(spool.glob("spool-*")) == []
