"""The ingest pipeline: batches, the builder process, and what the report says."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from payoff.catalog import Catalog
from payoff.demo import generate
from payoff.service import ingest as ingest_module
from payoff.service.ingest import Builder, build_batch, ingest_lines
from payoff.store import open_store


def _lines_with_faults(count: int) -> list[tuple[int, bytes]]:
    records: list[Any] = [
        r for r in generate(seed=5, customers=8, scale=6.0) if r.get("record") != "attestation"
    ][:count]
    lines = [msgspec.json.encode(r) for r in records]
    # Faults spread over several batches: bad JSON, an unknown field, a repeat, a conflict.
    lines[10] = b'{"id": "broken"'
    lines[12_345] = lines[12_345][:-1] + b', "colour": "red"}'
    lines[23_456] = lines[100]
    conflict = dict(records[200], id=records[300]["id"]) if "record" not in records[200] else None
    if conflict is not None:
        lines[31_000] = msgspec.json.encode(conflict)
    return list(enumerate(lines, start=1))


def _ledger(path: Path) -> list[tuple[Any, ...]]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT id, customer, task, input_tokens, output_tokens, cost_nanousd FROM events"
            " ORDER BY id"
        ).fetchall()


@pytest.mark.slow
def test_the_builder_process_gives_the_same_result_as_building_here(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setattr(ingest_module, "BATCH_RECORDS", 5_000)
    lines = _lines_with_faults(40_000)
    used_workers = []
    original = ingest_module._Ingest._run_with_workers

    def spy(self: Any, batches: Any, workers: int) -> None:
        used_workers.append(workers)
        original(self, batches, workers)

    monkeypatch.setattr(ingest_module._Ingest, "_run_with_workers", spy)
    results = {}
    for workers in (0, 1):
        store = open_store(tmp_path / f"w{workers}.db")
        report = ingest_lines(store, lines, workers=workers)
        store.close()
        results[workers] = (report.counts(), report.problems, _ledger(tmp_path / f"w{workers}.db"))
    assert used_workers == [1]
    assert results[0] == results[1]
    counts, problems, ledger = results[1]
    assert counts["rejected"] == 2 and counts["duplicates"] == 1
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    assert (problems[0].line, problems[0].id) == (11, "broken")
    assert len(ledger) > 20_000


def test_a_builder_whose_worker_died_builds_the_batch_here_and_starts_a_new_worker() -> None:
    catalog = Catalog()
    lines = _lines_with_faults(40_000)[:50]
    expected = build_batch(catalog, "s", lines)

    async def scenario(builder: Builder) -> None:
        assert await builder.build("s", lines) == expected
        first_pool = builder._pool
        for pid in list(first_pool._processes or {}):  # an OOM kill, say
            os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        assert await builder.build("s", lines) == expected  # built here, in a thread
        assert builder._pool is not first_pool
        assert await asyncio.wrap_future(builder.submit("s", lines)) == expected  # a new worker

    # fork: the worker starts in milliseconds; a server's Builder spawns instead
    with Builder(catalog, 1, multiprocessing.get_context("fork")) as builder:
        asyncio.run(scenario(builder))


def test_report_counts_add_up_across_files(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.db")
    records = list(generate(seed=2, customers=1))[:3]
    first = [(number, msgspec.json.encode(r)) for number, r in enumerate(records, start=1)]
    report = ingest_lines(store, first, source="a.jsonl")
    ingest_lines(store, first, source="b.jsonl", report=report)
    assert report.counts() == {"accepted": 3, "duplicates": 3, "conflicts": 0, "rejected": 0}


def test_a_record_that_fails_unexpectedly_is_rejected_and_its_batch_lands(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from payoff.catalog import Catalog

    original = Catalog.price_table

    def flaky(self: Catalog, provider: str, model: str, batch: bool, at_us: int) -> Any:
        if model == "explodes":
            raise RuntimeError("catalog fault")
        return original(self, provider, model, batch, at_us)

    monkeypatch.setattr(Catalog, "price_table", flaky)
    store = open_store(tmp_path / "l.db")
    records = [
        {"id": f"e{i}", "time": "2026-11-03T10:00:00Z", "customer": "acme",
         "provider": "openai", "model": "explodes" if i == 1 else "gpt-4o",
         "input_tokens": 10, "output_tokens": 5}
        for i in range(3)
    ]  # fmt: skip
    lines = list(enumerate((msgspec.json.encode(r) for r in records), start=1))
    report = ingest_lines(store, lines, workers=0)
    assert report.counts() == {"accepted": 2, "duplicates": 0, "conflicts": 0, "rejected": 1}
    assert report.problems[0].line == 2
    assert "RuntimeError: catalog fault" in report.problems[0].reason


def test_a_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    import io

    from payoff.service import numbered_lines

    record = msgspec.json.encode(
        {"id": "e1", "time": "2026-11-03T10:00:00Z", "customer": "acme", "kind": "tool",
         "cost": "0.001"}
    )  # fmt: skip
    store = open_store(tmp_path / "l.db")
    stream = io.BytesIO(b"\xef\xbb\xbf" + record + b"\r\n\n  \n")
    assert ingest_lines(store, numbered_lines(stream)).counts()["accepted"] == 1


@pytest.mark.slow
def test_a_builder_killed_during_a_file_ingest_is_restarted_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    count = 3 * ingest_module.BATCH_RECORDS + 7
    killed: list[int] = []

    def lines() -> Any:
        for number in range(1, count + 1):
            if number == 2 * ingest_module.BATCH_RECORDS + 1:  # two batches handed over
                for worker in multiprocessing.active_children():
                    os.kill(worker.pid or 0, signal.SIGKILL)  # an OOM kill, say
                    killed.append(worker.pid or 0)
            record = {"id": f"e{number}", "time": "2026-11-03T10:00:00Z", "customer": "acme",
                      "provider": "openai", "model": "gpt-4o", "input_tokens": 10,
                      "output_tokens": 5}  # fmt: skip
            yield number, msgspec.json.encode(record)

    store = open_store(tmp_path / "l.db")
    report = ingest_lines(store, lines(), workers=1)
    store.close()
    assert killed
    assert report.counts() == {"accepted": count, "duplicates": 0, "conflicts": 0, "rejected": 0}
    assert report.builder_restarts >= 1
    assert len(_ledger(tmp_path / "l.db")) == count


def _usage_batch(first: int, count: int) -> Any:
    lines = [
        (n, msgspec.json.encode({"id": f"e{n}", "time": "2026-11-03T10:00:00Z", "customer":
         "acme", "kind": "tool", "quantity": "1", "unit": "search"}))
        for n in range(first, first + count)
    ]  # fmt: skip
    batch, problems = build_batch(Catalog(), None, lines)
    assert not problems
    return batch


def test_grouped_writes_commit_once_enough_rows_are_in_and_an_error_loses_the_rest(
    tmp_path: Path,
) -> None:
    store = open_store(tmp_path / "ledger.db")
    try:
        with store.grouped_writes(5):
            store.write(_usage_batch(1, 3), lambda: 1)
            assert len(_ledger(tmp_path / "ledger.db")) == 0  # not committed yet
            store.write(_usage_batch(4, 3), lambda: 2)
            assert len(_ledger(tmp_path / "ledger.db")) == 6  # 6 rows >= 5: committed
            store.write(_usage_batch(7, 1), lambda: 3)
        assert len(_ledger(tmp_path / "ledger.db")) == 7  # the end of the group commits
        with pytest.raises(RuntimeError), store.grouped_writes(100):
            store.write(_usage_batch(8, 2), lambda: 4)
            raise RuntimeError("the file could not be read further")
        assert len(_ledger(tmp_path / "ledger.db")) == 7
        store.write(_usage_batch(8, 2), lambda: 5)  # outside a group: one commit a batch
        assert len(_ledger(tmp_path / "ledger.db")) == 9
        with store.engine.connect() as conn:  # type: ignore[attr-defined]
            from payoff.store import rollups

            assert rollups.mismatches(conn) == []
    finally:
        store.close()


@pytest.mark.slow
def test_a_file_ingested_with_grouped_commits_lands_as_with_a_commit_per_batch(
    tmp_path: Path,
) -> None:
    # Verdicts batches after their claims: their check reads committed rows only.
    records = list(generate(seed=5, customers=8, scale=4.0))
    verdicts = [r for r in records if r.get("record") == "attestation"]
    records = [r for r in records if r.get("record") != "attestation"] + verdicts
    assert len(verdicts) > 100
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1)]
    assert len(lines) > 3 * ingest_module.BATCH_RECORDS
    reports = []
    for name, commit_rows in (("each.db", None), ("grouped.db", 50_000)):
        store = open_store(tmp_path / name)
        try:
            reports.append(ingest_lines(store, lines, workers=0, commit_rows=commit_rows))
        finally:
            store.close()
    each, grouped = reports
    assert each.accepted > 0.99 * len(lines)  # the demo's few verdicts out of order refused
    assert (grouped.accepted, grouped.rejected) == (each.accepted, each.rejected)
    assert [p.reason for p in grouped.problems] == [p.reason for p in each.problems]
    assert _ledger(tmp_path / "grouped.db") == _ledger(tmp_path / "each.db")


def _seq_order(path: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return [id_ for (id_,) in conn.execute("SELECT id FROM events ORDER BY seq")]


def test_a_batch_inserts_its_events_in_the_order_of_their_ids(tmp_path: Path) -> None:
    """Random ids go into the unique index in its own order (see `sql._in_key_order`)."""
    import random

    from factories import usage

    rng = random.Random(3)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(50)]
    store = open_store(tmp_path / "l.db")
    lines = [(n, msgspec.json.encode(usage(i))) for n, i in enumerate(ids, start=1)]
    report = ingest_lines(store, lines)
    assert report.accepted == 50
    assert _seq_order(tmp_path / "l.db") == sorted(ids)


def test_a_batch_of_repeats_in_key_order_still_answers_each_line(tmp_path: Path) -> None:
    """Sorted for the insert, the rows keep their statuses line by line: a duplicate and a
    conflict anywhere in the batch are named at their own lines, the new ids land."""
    from factories import usage

    store = open_store(tmp_path / "l.db")
    ingest_lines(
        store, [(1, msgspec.json.encode(usage("m"))), (2, msgspec.json.encode(usage("c")))]
    )
    later = [
        usage("z"),
        usage("m"),  # a duplicate of what is stored
        usage("a"),
        usage("c", input_tokens=1),  # a conflict with what is stored
        usage("b"),
        usage("a"),  # a duplicate within the batch
    ]
    problems: list[Any] = []
    report = ingest_lines(
        store,
        [(n, msgspec.json.encode(r)) for n, r in enumerate(later, start=1)],
        on_problem=problems.append,
    )
    assert report.counts() == {"accepted": 3, "duplicates": 2, "conflicts": 1, "rejected": 0}
    assert [(p.line, p.id, p.status) for p in problems] == [(4, "c", "conflict")]
    assert _seq_order(tmp_path / "l.db") == ["c", "m", "a", "b", "z"]
