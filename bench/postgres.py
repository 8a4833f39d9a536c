"""PostgreSQL: `payoff ingest` against a bare COPY, and batched HTTP ingest with 4 workers.

Both run on a throwaway PostgreSQL 15 cluster started for the run (the tests' own:
tests/postgres_cluster.py; fsync off, so the disk's flush latency is out of both figures).

- ingest: `payoff --db URL ingest FILE --json` as a child process into a fresh database,
  wall time to exit; the baseline COPYs the same rows (built by payoff's RowBuilder) into a
  table with the ledger's columns and the same unique key (`id` PRIMARY KEY), one
  transaction per batch of payoff's size, in a fresh database. Repeats alternate.
- HTTP: `payoff serve --workers 4` on a fresh database, the bodies of bench/server.py sent
  by its clients; events a second from the first request to the last answer.

    python -m bench.postgres [RECORDS]    # a quick look, 100,000 records by default
"""

from __future__ import annotations

import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import bare, server
from bench.workload import WORK

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
import postgres_cluster  # the tests' cluster helper, on the path from the line above

PAYOFF = Path(sys.executable).with_name("payoff")
HTTP_WORKERS = 4
HEADING = "## PostgreSQL: "


@dataclass(frozen=True)
class PostgresResult:
    records: int
    payoff_seconds: list[float]
    copy_seconds: list[float]
    http_seconds: list[float]

    @property
    def payoff_rate(self) -> float:
        return self.records / statistics.median(self.payoff_seconds)

    @property
    def copy_rate(self) -> float:
        return self.records / statistics.median(self.copy_seconds)

    @property
    def ratio(self) -> float:
        return self.payoff_rate / self.copy_rate

    @property
    def http_rate(self) -> float:
        return self.records / statistics.median(self.http_seconds)


def _payoff_ingest(url: str, path: Path, records: int) -> float:
    command = [str(PAYOFF), "--db", url, "ingest", str(path), "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    counts = json.loads(done.stdout or "{}")
    if done.returncode != 0 or counts.get("accepted") != records:
        raise RuntimeError(
            f"payoff ingest exited {done.returncode}, {counts}: {done.stderr[-2000:]}"
        )
    return seconds


def _bare_copy(url: str, batches: list[list[Any]]) -> float:
    """Seconds to COPY the rows into a table with the ledger's columns and unique id."""
    import psycopg

    from payoff.store.protocol import EVENT_COLUMNS
    from payoff.store.schema import events

    columns = EVENT_COLUMNS[:-1]
    typed = ", ".join(
        f"{name} {events.c[name].type.compile(dialect=_dialect())}" for name in columns
    )
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE bare_events ({typed}, received_at_us bigint, PRIMARY KEY (id))")  # type: ignore[arg-type]
        conn.commit()
        start = time.perf_counter()
        for batch in batches:
            with conn.cursor().copy(f"COPY bare_events ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[arg-type]
                for row in batch:
                    copy.write_row(row)
            conn.commit()
        return time.perf_counter() - start


def _dialect() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


@contextmanager
def _served(url: str, folder: Path) -> Iterator[tuple[int, str]]:
    from payoff.service import access
    from payoff.store import open_store

    store = open_store(url)
    _, key = access.create_key(store, "ingest")
    store.close()
    port = server._free_port()
    command = [
        sys.executable, "-m", "payoff.cli", "--db", url, "serve",
        "--port", str(port), "--workers", str(HTTP_WORKERS),
    ]  # fmt: skip
    log_file = (folder / "serve.log").open("wb")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("payoff serve did not start") from None
                time.sleep(0.05)
        yield port, key
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()


def measure(
    usage_file: Path, records: int, repeats: int, log: Callable[[str], None]
) -> PostgresResult:
    from payoff.service import BATCH_RECORDS

    rows = bare.event_rows(usage_file)
    batches = [rows[i : i + BATCH_RECORDS] for i in range(0, len(rows), BATCH_RECORDS)]
    bodies = server._bodies(usage_file)
    payoff_seconds, copy_seconds, http_seconds = [], [], []
    with postgres_cluster.running_cluster() as cluster:
        for repeat in range(repeats):
            seconds = _payoff_ingest(cluster.fresh_database(migrated=False), usage_file, records)
            payoff_seconds.append(seconds)
            log(f"  payoff ingest, repeat {repeat + 1}: {seconds:.2f} s")
            copy_seconds.append(_bare_copy(cluster.fresh_database(migrated=False), batches))
            log(f"  bare COPY, repeat {repeat + 1}: {copy_seconds[-1]:.2f} s")
            with (
                tempfile.TemporaryDirectory(dir=WORK) as folder,
                _served(cluster.fresh_database(migrated=False), Path(folder)) as (port, key),
            ):
                http_seconds.append(server._batched(port, key, bodies, records))
            rate = records / http_seconds[-1]
            log(f"  http batched, {HTTP_WORKERS} workers: {rate:,.0f} events/s")
    return PostgresResult(records, payoff_seconds, copy_seconds, http_seconds)


if __name__ == "__main__":
    from bench import workload

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    found = measure(workload.path_for(count), count, 1, print)
    print(
        f"payoff ingest {found.payoff_rate:,.0f} events/s, bare COPY {found.copy_rate:,.0f} "
        f"events/s, ratio {found.ratio:.2f}; HTTP {found.http_rate:,.0f} events/s"
    )


INGEST_RATIO_MIN = 0.5
HTTP_RATE_MIN = 100_000


def section(r: PostgresResult) -> list[str]:
    """The section of RESULTS.md."""
    from bench.run import _seconds, _table, _verdict

    return [
        f"{HEADING}ingest of {r.records:,} usage records, and HTTP with {HTTP_WORKERS} workers",
        "",
        *_table(
            [
                ("payoff ingest into PostgreSQL", f"{r.payoff_rate:,.0f} events/s", "", ""),
                ("bare COPY, same rows, same unique key", f"{r.copy_rate:,.0f} events/s", "", ""),
                (
                    "payoff / bare COPY",
                    f"{r.ratio:.2f}",
                    f"≥ {INGEST_RATIO_MIN}",
                    _verdict(r.ratio >= INGEST_RATIO_MIN),
                ),
                (
                    f"HTTP batched ingest, `payoff serve --workers {HTTP_WORKERS}`",
                    f"{r.http_rate:,.0f} events/s",
                    f"≥ {HTTP_RATE_MIN:,}",
                    _verdict(r.http_rate >= HTTP_RATE_MIN),
                ),
            ]
        ),
        "",
        "Method: a throwaway PostgreSQL 15 cluster on a unix socket, fsync off "
        "(tests/postgres_cluster.py), a fresh database for each run. payoff: "
        "`payoff --db URL ingest FILE --json` as a child process, wall time from start to exit "
        "(migrations, parsing, costing, binary COPY into staging, the INSERTs into "
        "`event_ids` and the month's partition, tasks, the rollups), accepted count checked. "
        "Bare: the same rows, "
        "built beforehand by payoff's RowBuilder, COPY'd by psycopg into one table with the "
        "ledger's columns and `PRIMARY KEY (id)`, one transaction per batch of payoff's size. "
        f"HTTP: bench/server.py's bodies and clients against `payoff serve --workers "
        f"{HTTP_WORKERS}`. {len(r.payoff_seconds)} alternating repeat(s), medians. Seconds: "
        f"payoff {_seconds(r.payoff_seconds)}; bare COPY {_seconds(r.copy_seconds)}; HTTP "
        f"{_seconds(r.http_seconds)}.",
    ]
