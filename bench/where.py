"""Where the time of `payoff ingest` goes, per 10,000-record batch, beside the bare insert.

Run as `python -m bench.where RECORDS [--ids random|mixed|sequential]`. In one process,
on the workload's records: the CPU time to build each batch (decode and cost, what the
builder process does), then the store's writes as `payoff ingest` makes them (one
transaction every FILE_COMMIT_ROWS rows) with every SQLite statement timed by what it does
(events, tasks, rollups, commit...), then the bare `executemany` of the same rows
(bench/bare.py) into a fresh file. Time is wall time unless it says CPU: on a machine others
share, compare the parts with each other and with the bare figure of the same run, not
with another run's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench import bare, workload
from payoff.catalog import Catalog
from payoff.service.clock import now_us
from payoff.service.gc_pause import gc_paused
from payoff.service.ingest import FILE_COMMIT_ROWS, _batches, build_batch, numbered_lines
from payoff.store import open_store
from payoff.store.protocol import Row, WriteBatch

KINDS = (
    ("INSERT INTO events", "events insert"),
    ("INSERT INTO usage_rollups", "rollup by task type"),
    ("INSERT INTO task_usage_rollups", "rollup by task"),
    ("INSERT INTO rollup_days", "rollup days"),
    ("max(events.seq)", "highest seq"),
    ("FROM tasks", "tasks read"),
    ("INSERT INTO tasks", "tasks insert"),
    ("INSERT INTO customers", "customers insert"),
    ("SAVEPOINT", "savepoints"),
    ("RELEASE", "savepoints"),
)


def _kind(statement: str) -> str:
    return next((name for marker, name in KINDS if marker in statement), "other statements")


@contextmanager
def statement_timer(engine: Any, seconds: dict[str, float]) -> Iterator[None]:
    """Add each statement's wall time to `seconds`, by its kind, and each commit's."""
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seconds[_kind(statement)] += time.perf_counter() - started.pop()

    dialect = engine.dialect
    do_commit = dialect.do_commit

    def timed_commit(dbapi_connection: Any) -> None:
        start = time.perf_counter()
        do_commit(dbapi_connection)
        seconds["commit (fsync)"] += time.perf_counter() - start

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    dialect.do_commit = timed_commit
    try:
        yield
    finally:
        dialect.do_commit = do_commit
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


def built_batches(path: Path) -> tuple[list[WriteBatch], float]:
    """The workload's batches as ingest builds them, and the CPU seconds that took."""
    catalog = Catalog()
    with path.open("rb") as lines:
        batches = list(_batches(numbered_lines(lines)))
    start = time.process_time()
    built = [build_batch(catalog, None, lines).batch for lines in batches]
    return built, time.process_time() - start


def write_seconds(batches: list[WriteBatch], folder: Path) -> tuple[dict[str, float], float]:
    """({kind: wall seconds}, writer CPU seconds) of writing the batches as ingest does."""
    store = open_store(folder / "ledger.db")
    seconds: dict[str, float] = defaultdict(float)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    with statement_timer(store.engine, seconds), gc_paused():
        with store.grouped_writes(FILE_COMMIT_ROWS):
            for batch in batches:
                store.write(batch, now_us)
        closing = time.perf_counter()
        store.close()
        seconds["close (checkpoint)"] += time.perf_counter() - closing
    seconds["total"] = time.perf_counter() - start_wall
    timed = sum(v for k, v in seconds.items() if k != "total")
    seconds["python (payoff's own)"] = seconds["total"] - timed
    return seconds, time.process_time() - start_cpu


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.where")
    parser.add_argument("records", type=int)
    parser.add_argument("--ids", choices=workload.IDS, default="random")
    args = parser.parse_args()
    path = workload.path_for(args.records, ids=args.ids)
    batches, build_cpu = built_batches(path)
    per = len(batches)
    rows: list[Row] = [row for batch in batches for row in batch.events]
    workload.WORK.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workload.WORK) as folder:
        seconds, writer_cpu = write_seconds(batches, Path(folder))
        ddl = bare.events_ddl(Path(folder))
        chunks = [rows[i : i + len(rows) // per] for i in range(0, len(rows), len(rows) // per)]
        bare_s = bare.insert_seconds(chunks, ddl, Path(folder))
    print(f"{args.records:,} records ({args.ids} ids), {per} batches; ms per batch:")
    print(f"  build (decode and cost), CPU      {build_cpu / per * 1e3:8.1f}")
    print(f"  write, CPU of the writer          {writer_cpu / per * 1e3:8.1f}")
    for name, value in sorted(seconds.items(), key=lambda item: -item[1]):
        print(f"  write: {name:<27}{value / per * 1e3:8.1f}")
    print(f"  bare executemany, all included    {bare_s / per * 1e3:8.1f}")


if __name__ == "__main__":
    main()
