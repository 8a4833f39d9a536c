"""How an invoice run grows with the month: `payoff invoice run` on ledgers of N and 10N events.

Each ledger is the rating benchmark's (`bench.rating.ledger`: 100 customers on the example
plans, cached under bench/.work/). Each run is `payoff --db COPY invoice run --period
2026-11 --json` in a child process, on a fresh copy of the ledger (a run stores drafts),
timed from start to exit, with the child's peak RSS. Rating reads the daily rollups, so
the run should grow with the customers, days and task counts, not with the events.

The sizes are `PAYOFF_BENCH_INVOICE_EVENTS` (comma-separated; by default the run's record
count and ten times it: 1,000,000 and 10,000,000 in `make bench`). Building the
10,000,000-event ledger takes long (generating and ingesting the month: bench/RESULTS.md
says how long it took); it is built once and cached.

On PostgreSQL (`measure_postgres`, `--postgres`), each SQLite ledger is moved by `payoff
copy` into a database of a throwaway cluster (tests/postgres_cluster.py; the copy is its
build time), and each run gets a fresh clone of it (CREATE DATABASE ... TEMPLATE).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import rating
from bench.workload import MONTH, WORK

PAYOFF = Path(sys.executable).with_name("payoff")
SIZES_VARIABLE = "PAYOFF_BENCH_INVOICE_EVENTS"
TARGET_RATIO = 1.5
MEMORY_TARGET_BYTES = 300 * 10**6


@dataclass(frozen=True)
class InvoiceScaleResult:
    sizes: tuple[int, ...]
    seconds: dict[int, list[float]]
    peak_rss_bytes: dict[int, list[int]]
    build_seconds: dict[int, float]
    """Seconds it took to build each ledger in this run (0 when it was cached)."""
    backend: str = "SQLite"

    def median(self, size: int) -> float:
        return statistics.median(self.seconds[size])

    @property
    def ratio(self) -> float:
        """The largest ledger's run over the smallest's."""
        return self.median(self.sizes[-1]) / self.median(self.sizes[0])


def sizes(records: int) -> tuple[int, ...]:
    text = os.environ.get(SIZES_VARIABLE)
    if not text:
        return (records, 10 * records)
    return tuple(sorted(int(part.replace("_", "")) for part in text.split(",")))


def run_once(ledger: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one invoice run on a copy of the ledger."""
    with tempfile.TemporaryDirectory(dir=WORK) as scratch:
        copy = Path(scratch) / "ledger.db"
        shutil.copyfile(ledger, copy)
        return _invoice_run(str(copy))


def _invoice_run(db: str) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of `payoff invoice run` on the ledger `db`."""
    command = [str(PAYOFF), "--db", db, "invoice", "run", "--period", MONTH, "--json"]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        tail = child.stderr.read()[-2000:] if child.stderr else b""
        raise RuntimeError(f"payoff invoice run failed: {tail!r}")
    return seconds, usage.ru_maxrss * 1024


def measure(chosen: tuple[int, ...], repeats: int, log: Any = print) -> InvoiceScaleResult:
    seconds: dict[int, list[float]] = {size: [] for size in chosen}
    peaks: dict[int, list[int]] = {size: [] for size in chosen}
    built: dict[int, float] = {}
    ledgers = {}
    for size in chosen:
        start = time.perf_counter()
        ledgers[size], _ = rating.ledger(size, log)
        built[size] = time.perf_counter() - start
    for repeat in range(1, repeats + 1):
        for size in chosen:  # alternating, so that noise hits every size alike
            took, peak = run_once(ledgers[size])
            seconds[size].append(took)
            peaks[size].append(peak)
            log(f"  repeat {repeat}/{repeats}: {size:,} events: {took:.2f} s, {peak / 1e6:.0f} MB")
    return InvoiceScaleResult(chosen, seconds, peaks, built)


def measure_postgres(chosen: tuple[int, ...], repeats: int, log: Any = print) -> InvoiceScaleResult:
    """`measure` on PostgreSQL: each ledger copied into a database, each run on a clone."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
    import postgres_cluster  # the tests' cluster helper, on the path from the line above

    seconds: dict[int, list[float]] = {size: [] for size in chosen}
    peaks: dict[int, list[int]] = {size: [] for size in chosen}
    built: dict[int, float] = {}
    with postgres_cluster.running_cluster() as cluster:
        for size in chosen:
            source, _ = rating.ledger(size, log)
            cluster.admin(f"CREATE DATABASE invoices_{size} TEMPLATE template0")  # C collation
            start = time.perf_counter()
            copied = subprocess.run(
                [str(PAYOFF), "copy", "--from", str(source), "--to", _url(cluster, size)],
                capture_output=True,
                check=False,
            )
            if copied.returncode != 0:
                raise RuntimeError(f"payoff copy failed: {copied.stderr[-2000:]!r}")
            built[size] = time.perf_counter() - start
            log(f"  copied the {size:,}-event ledger into PostgreSQL: {built[size]:.0f} s")
        for repeat in range(1, repeats + 1):
            for size in chosen:
                clone = f"invoices_{size}_run{repeat}"
                cluster.admin(f"CREATE DATABASE {clone} TEMPLATE invoices_{size}")
                took, peak = _invoice_run(cluster.url(clone))
                seconds[size].append(took)
                peaks[size].append(peak)
                log(
                    f"  repeat {repeat}/{repeats}: {size:,} events: {took:.2f} s, "
                    f"{peak / 1e6:.0f} MB"
                )
    return InvoiceScaleResult(chosen, seconds, peaks, built, backend="PostgreSQL")


def _url(cluster: Any, size: int) -> str:
    return str(cluster.url(f"invoices_{size}"))


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.invoice_scale")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write its section of RESULTS.md")
    parser.add_argument("--postgres", action="store_true", help="on PostgreSQL, not SQLite")
    args = parser.parse_args()
    run = measure_postgres if args.postgres else measure
    result = run(sizes(args.records), args.repeats)
    print(f"{result.backend} {result.sizes}: {result.ratio:.2f}x")
    if args.write:
        from bench.run import write_invoice_scale_section

        print(f"wrote {write_invoice_scale_section(result)}")


if __name__ == "__main__":
    main()
