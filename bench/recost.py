"""Re-pricing a ledger of N usage events with `payoff recost --all`, against bare baselines.

The ledger is the ingest workload's N records, ingested once (cached), and copied afresh for
each run. The overrides file prices every model of the ledger at other rates than the
catalog's, so that every model call is re-priced: the worst case, where each step's old
cost is kept and its new one written. A second `recost --all` on the same copy then finds
nothing to change: the read-and-price pass alone.

Two baselines, measured in the same run on the same calls:
- bare costing: `Catalog.price_table` + `PriceTable.cost_nanousd` of every model call, in
  memory (the costing benchmark's per-call work, without the ledger);
- bare SQL: plain sqlite3 reading the same rows in pages of the same size, and writing
  each row's old cost to a history table and a new cost into the row, one transaction per
  page (WAL, `synchronous=FULL`): the ledger's I/O without payoff.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

from bench import costing
from bench.ingest import PAYOFF
from bench.workload import WORK
from payoff.service import ingest_lines
from payoff.store import open_store
from payoff.store.costs import RECOST_BATCH

HEADING = "## Re-pricing "


@dataclass(frozen=True)
class RecostResult:
    events: int
    model_calls: int
    recost_seconds: list[float]  # every model call re-priced
    idle_seconds: list[float]  # the second run: nothing to change
    costing_seconds: list[float]
    bare_sql_seconds: list[float]

    def rate(self, seconds: list[float]) -> float:
        return self.model_calls / statistics.median(seconds)

    @property
    def per_call_us(self) -> float:
        return statistics.median(self.recost_seconds) / self.model_calls * 10**6

    @property
    def costing_per_call_us(self) -> float:
        return statistics.median(self.costing_seconds) / self.model_calls * 10**6

    @property
    def costing_ratio(self) -> float:
        return statistics.median(self.recost_seconds) / statistics.median(self.costing_seconds)

    @property
    def bare_sql_ratio(self) -> float:
        return statistics.median(self.recost_seconds) / statistics.median(self.bare_sql_seconds)


def ledger(usage_file: Path, events: int, log: Callable[[str], None]) -> Path:
    """The workload ingested into a ledger, built once and cached beside the file."""
    path = WORK / f"recost-{usage_file.stem}.db"
    if path.exists():
        return path
    log(f"  ingesting {events:,} records into a ledger (not timed)...")
    partial = path.with_suffix(".tmp.db")
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        stale.unlink(missing_ok=True)
    store = open_store(partial)
    with usage_file.open("rb") as lines:
        report = ingest_lines(store, enumerate(lines, start=1))
    store.close()
    assert report.accepted == events, report.counts()
    partial.replace(path)
    return path


def overrides(path: Path, target: Path) -> None:
    """An overrides file pricing every model of the ledger at rates the catalog does not use."""
    with sqlite3.connect(path) as conn:
        models = conn.execute(
            "SELECT DISTINCT provider, model FROM events WHERE kind = 'llm' ORDER BY 1, 2"
        ).fetchall()
    prices = [
        {"provider": provider, "model": model, "input_mtok": "0.123", "output_mtok": "0.987",
         "cache_read_mtok": "0.012"}
        for provider, model in models
    ]  # fmt: skip
    target.write_bytes(msgspec.yaml.encode({"prices": prices}))


def _copy(path: Path, target: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(path, target)


def _recost(db: Path, prices: Path) -> tuple[float, dict[str, object]]:
    """`payoff recost --all` as a child process: wall time, and what it reported."""
    command = [str(PAYOFF), "--db", str(db), "--prices", str(prices), "recost", "--all", "--json"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def bare_sql_seconds(db: Path) -> float:
    """Read the model calls by seq in pages; keep each old cost and write a new one."""
    start = time.perf_counter()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE bare_history (seq INTEGER PRIMARY KEY, event_seq INTEGER NOT NULL,"
        " cost_nanousd BIGINT, until_us BIGINT NOT NULL)"
    )
    after = 0
    while True:
        conn.execute("BEGIN IMMEDIATE")
        rows = conn.execute(
            "SELECT seq, provider, model, input_tokens, cache_read_tokens, cache_write_tokens,"
            " output_tokens, reasoning_tokens, usage_details, cost_nanousd FROM events"
            " WHERE seq > ? AND kind = 'llm' ORDER BY seq LIMIT ?",
            (after, RECOST_BATCH),
        ).fetchall()
        if not rows:
            conn.execute("COMMIT")
            break
        conn.executemany(
            "INSERT INTO bare_history (event_seq, cost_nanousd, until_us) VALUES (?, ?, 1)",
            [(row[0], row[-1]) for row in rows],
        )
        conn.executemany(
            "UPDATE events SET cost_nanousd = ?, costed_at_us = 1 WHERE seq = ?",
            [((row[-1] or 0) + 1, row[0]) for row in rows],
        )
        conn.execute("COMMIT")
        after = rows[-1][0]
    conn.close()
    return time.perf_counter() - start


def _calls(db: Path) -> list[costing.Call]:
    """The ledger's model calls, as the costing benchmark costs them."""
    from payoff.core.periods import from_us
    from payoff.core.tokens import TokenCounts

    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT provider, model, batch, occurred_at_us, input_tokens, cache_read_tokens,"
            " cache_write_tokens, output_tokens, reasoning_tokens, visible FROM events"
            " WHERE kind = 'llm' ORDER BY seq"
        ).fetchall()
    return [
        costing.Call(p, m, bool(b), from_us(at), at, TokenCounts(*tokens), bool(v))
        for p, m, b, at, *tokens, v in rows
    ]


def measure(
    usage_file: Path, events: int, repeats: int, log: Callable[[str], None] = print
) -> RecostResult:
    source = ledger(usage_file, events, log)
    prices, copy = WORK / "recost-prices.yaml", WORK / "recost-run.db"
    overrides(source, prices)
    calls = _calls(source)
    recosts: list[float] = []
    idles: list[float] = []
    costings: list[float] = []
    bares: list[float] = []
    for repeat in range(1, repeats + 1):
        _copy(source, copy)
        seconds, done = _recost(copy, prices)
        assert done["repriced"] == len(calls), done
        recosts.append(seconds)
        seconds, done = _recost(copy, prices)
        assert done["repriced"] == 0 and done["unchanged"] == len(calls), done
        idles.append(seconds)
        start = time.perf_counter()
        costing.bulk_costs(calls)
        costings.append(time.perf_counter() - start)
        _copy(source, copy)
        bares.append(bare_sql_seconds(copy))
        log(
            f"  repeat {repeat}/{repeats}: recost --all {recosts[-1]:.2f} s, again "
            f"{idles[-1]:.2f} s; bare costing {costings[-1]:.2f} s, bare SQL {bares[-1]:.2f} s"
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    return RecostResult(events, len(calls), recosts, idles, costings, bares)


if __name__ == "__main__":
    import argparse

    from bench import workload

    parser = argparse.ArgumentParser(prog="python -m bench.recost")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--write", action="store_true", help="replace the re-pricing section of bench/RESULTS.md"
    )
    args = parser.parse_args()
    found = measure(workload.path_for(args.records), args.records, args.repeats)
    print(
        f"recost --all {found.rate(found.recost_seconds):,.0f} steps/s "
        f"({found.per_call_us:.1f} µs a step), {found.costing_ratio:.1f}x bare costing, "
        f"{found.bare_sql_ratio:.2f}x bare SQL; again {found.rate(found.idle_seconds):,.0f} "
        "steps/s"
    )
    if args.write:
        from bench.run import write_recost_section

        print(f"wrote {write_recost_section(found)}")
