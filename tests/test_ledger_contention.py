"""Writers that contend for the ledger: a live server under ingest while admin writes hit it,
and several `payoff invoice run` processes on one ledger. Real processes, real SQLite.

SQLite lets one connection write at a time. A transaction that reads first and writes later
cannot wait for the lock once another writer has committed since its read (its snapshot is
stale), so every write transaction must take the lock up front; and a lock still held when
the wait is over is answered as busy (503 with `Retry-After`, one line from the CLI).
"""

from __future__ import annotations

import datetime as dt
import io
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import msgspec
import pytest

import payoff
from api_support import Keys, live_server, prepare_ledger, usage
from factories import OUTCOME_PLAN
from payoff.demo import generate
from payoff.service import invoices, plans
from payoff.store import open_store

# Every test here starts processes or a live server: seconds each.
pytestmark = pytest.mark.slow

PAYOFF = str(Path(sys.executable).with_name("payoff"))
INGEST_BATCH = 500
ADMIN_ROUNDS = 8


def _ingest(url: str, key: str, client: int, stop: threading.Event, statuses: list[int]) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        batch = 0
        while not stop.is_set():
            records = [
                usage(f"c{client}-b{batch}-{i}", task=f"c{client}-t{batch}")
                for i in range(INGEST_BATCH)
            ]
            answer = http.post("/v1/events", content=msgspec.json.encode(records), timeout=60)
            statuses.append(answer.status_code)
            batch += 1


def _admin_writes(url: str, key: str, answers: list[tuple[str, int, str]]) -> None:
    """Plans, subscriptions, keys and customers, one after the other, as an operator would."""

    def post(path: str, **body: object) -> None:
        try:
            answer = http.post(path, timeout=60, **body)  # type: ignore[arg-type]
        except httpx.TransportError as exc:  # a connection the server dropped
            answers.append((path, 0, repr(exc)))
        else:
            answers.append((path, answer.status_code, answer.text))

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}) as http:
        for round_ in range(ADMIN_ROUNDS):
            plan = OUTCOME_PLAN.replace("id: outcomes", f"id: plan-{round_}")
            post("/v1/plans", content=plan.encode())
            subscription = {"customer": f"cust-{round_}", "plan": f"plan-{round_}"}
            post("/v1/subscriptions", json={**subscription, "from": "2026-11-01"})
            post("/v1/keys", json={"scope": "ingest"})
            post("/v1/customers", json={"id": f"cust-{round_}", "name": "C"})


def test_admin_writes_during_batched_ingest_all_succeed(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys: Keys = prepare_ledger(db)
    stop = threading.Event()
    ingest_statuses: list[int] = []
    admin_answers: list[tuple[str, int, str]] = []
    with live_server(db, log, "--workers", "2") as server:
        ingesting = [
            threading.Thread(
                target=_ingest, args=(server.url, keys.ingest, n, stop, ingest_statuses)
            )
            for n in range(3)
        ]
        for thread in ingesting:
            thread.start()
        try:
            _admin_writes(server.url, keys.admin, admin_answers)
        finally:
            stop.set()
            for thread in ingesting:
                thread.join(timeout=120)
    failed = [answer for answer in admin_answers if answer[1] != 200]
    assert not failed, f"{len(failed)} of {len(admin_answers)} admin writes failed: {failed[:3]}"
    assert ingest_statuses and set(ingest_statuses) == {200}
    assert "Traceback" not in log.read_text()
    with sqlite3.connect(db) as conn:
        plans = conn.execute("SELECT count(*) FROM plans WHERE id LIKE 'plan-%'").fetchone()[0]
        subscribed = conn.execute(
            "SELECT count(DISTINCT customer) FROM subscriptions WHERE plan_id LIKE 'plan-%'"
        ).fetchone()[0]
        keys_made = conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]
    assert (plans, subscribed, keys_made) == (ADMIN_ROUNDS, ADMIN_ROUNDS, 4 + ADMIN_ROUNDS)


# -- several `payoff invoice run` processes on one ledger ---------------------------------


def _billable_ledger(tmp_path: Path) -> Path:
    """A ledger of November 2026: six customers' agent work, each on an outcome plan."""
    db = tmp_path / "ledger.db"
    records = list(generate(seed=5, customers=6, scale=1.0))
    plan = tmp_path / "plan.yaml"
    plan.write_text(OUTCOME_PLAN)
    store = open_store(db)
    try:
        lines = payoff.numbered_lines(io.BytesIO(b"\n".join(map(msgspec.json.encode, records))))
        payoff.ingest_lines(store, lines)
        plans.apply_plan(store, plan)
        for customer in sorted({r["customer"] for r in records if r.get("customer")}):
            plans.subscribe(store, customer, "outcomes", dt.date(2026, 10, 1))
    finally:
        store.close()
    return db


def _drafts(db: Path) -> dict[tuple[str, str], tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT customer, period, status, total FROM invoices").fetchall()
    return {(customer, period): (status, total) for customer, period, status, total in rows}


def test_concurrent_invoice_runs_all_succeed_and_store_the_right_drafts(tmp_path: Path) -> None:
    db = _billable_ledger(tmp_path)
    alone = tmp_path / "alone.db"
    with sqlite3.connect(db) as source, sqlite3.connect(alone) as copy:
        source.backup(copy)  # the WAL included, which a file copy would leave out
    store = open_store(alone)
    try:
        invoices.run_invoices(store, "2026-11")
    finally:
        store.close()
    expected = _drafts(alone)
    assert len(expected) == 6

    runs = [
        subprocess.Popen(
            [PAYOFF, "--db", str(db), "invoice", "run", "--period", "2026-11"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(3)
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=120)
        assert "Traceback" not in stderr.decode(), stderr.decode()[-2000:]
        assert run.returncode == 0, stderr.decode()
    assert _drafts(db) == expected


def test_a_ledger_locked_past_the_busy_timeout_is_one_clear_line(tmp_path: Path) -> None:
    db = tmp_path / "ledger.db"
    prepare_ledger(db)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock, and keeps it
    try:
        env = {**os.environ, "PAYOFF_BUSY_TIMEOUT": "0.2"}
        done = subprocess.run(
            [PAYOFF, "--db", str(db), "keys", "create", "--scope", "ingest"],
            capture_output=True,
            env=env,
            timeout=60,
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    stderr = done.stderr.decode()
    assert done.returncode == 75, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().count("\n") == 0
    assert "busy" in stderr and "try again" in stderr
