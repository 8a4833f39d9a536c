"""The real-time balance on a 1,000,000-event ledger: one read, and the lag from a record
acknowledged to the balance that shows it, against a bare baseline measured in the same run.

The ledger is the rating benchmark's workload (100 customers on the example plans), its
times moved into the current month so that it is the open period. Timed, each a median:

- a read after a new record (the period's spend rated again, from the daily rollups);
- a read with nothing new (the rating kept is reused);
- the lag: from `ingest_lines` acknowledging one record to a read that shows its cost;
- the bare baseline: one bare sqlite3 `SUM(cost)` of the customer's events in the period,
  the naive way to answer "what has it spent so far".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from bench.rating import CUSTOMERS, PLAN_NAMES, PLANS, _records
from bench.workload import WORK
from payoff import demo
from payoff.core.periods import Period
from payoff.service import ingest_lines, plans
from payoff.service.balances import live_balance
from payoff.service.credits import GrantTerms, grant_credits
from payoff.store import open_store

NOV_1 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
SQUEEZE = 12
"""The month's 30 days are squeezed into 2.5 days from the start of the current month."""
COST_PLUS = 1
"""The customer read is the first on the cost-plus plan (no minimum nor cap to hide a change)."""


def _month_start() -> dt.datetime:
    now = dt.datetime.now(dt.UTC)
    return dt.datetime(now.year, now.month, 1, tzinfo=dt.UTC)


def _moved(records: Iterator[dict[str, Any]], start: dt.datetime) -> Iterator[dict[str, Any]]:
    for record in records:
        at = dt.datetime.fromisoformat(record["time"])
        moved = start + (at - NOV_1) / SQUEEZE
        yield {**record, "time": moved.isoformat().replace("+00:00", "Z")}


def ledger(events: int, log: Any = print) -> tuple[Path, str]:
    start = _month_start()
    source = hashlib.blake2b(Path(demo.__file__).read_bytes(), digest_size=4).hexdigest()
    path = WORK / f"balance-{events}-{start:%Y-%m}-{source}.db"
    if path.exists():
        return path, _customer(path)
    WORK.mkdir(exist_ok=True)
    log(f"  building a ledger of {events:,} events in {start:%Y-%m} (not timed)...")
    partial = path.with_suffix(".tmp.db")  # a build cut short is never taken for a ledger
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        stale.unlink(missing_ok=True)
    store = open_store(partial)
    records = _moved(_records(events), start)
    lines = ((n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1))
    assert ingest_lines(store, lines).rejected == 0
    for name in PLAN_NAMES:
        plans.apply_plan(store, PLANS / f"{name}.yaml")
    every_day = (0, 86_400 * 10**6 * 10**6, 2**62)
    customers = sorted({row.customer for row in store.usage_by_day(*every_day)})
    assert len(customers) == CUSTOMERS
    for index, customer in enumerate(customers):
        plans.subscribe(store, customer, PLAN_NAMES[index % 3], start.date())
    grant_credits(store, customers[COST_PLUS], "1000000.00", GrantTerms(grant_id="bench"))
    store.close()
    partial.replace(path)
    return path, customers[COST_PLUS]


def _customer(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return str(conn.execute("SELECT customer FROM credit_entries").fetchone()[0])


def _step(number: int, customer: str) -> bytes:
    record = {
        "id": f"balance-bench-{time.time_ns()}-{number}",
        "time": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "customer": customer,
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1_000_000,
        "output_tokens": 100,
    }
    return msgspec.json.encode(record)


def bare_seconds(path: Path, customer: str) -> float:
    period = Period.month(_month_start().strftime("%Y-%m"))
    conn = sqlite3.connect(path)
    began = time.perf_counter()
    conn.execute(
        "SELECT coalesce(sum(cost_nanousd), 0) FROM events WHERE customer = ? "
        "AND occurred_at_us >= ? AND occurred_at_us < ?",
        (customer, period.start_us, period.end_us),
    ).fetchone()
    seconds = time.perf_counter() - began
    conn.close()
    return seconds


def measure(events: int, repeats: int, log: Any = print) -> dict[str, float]:
    path, customer = ledger(events, log)
    store = open_store(path)
    fresh, kept, lag, bare = [], [], [], []
    try:
        live_balance(store, customer)  # the first rating, not timed
        for repeat in range(repeats):
            before = live_balance(store, customer)["spend"]
            assert ingest_lines(store, [(1, _step(repeat, customer))], workers=0).clean
            acknowledged = time.perf_counter()
            shown = live_balance(store, customer)
            lag.append(time.perf_counter() - acknowledged)
            assert shown["spend"] != before, "the read after the record does not show it"
            fresh.append(lag[-1])
            began = time.perf_counter()
            live_balance(store, customer)
            kept.append(time.perf_counter() - began)
            bare.append(bare_seconds(path, customer))
            log(
                f"  repeat {repeat + 1}/{repeats}: read after a record {fresh[-1] * 1000:.1f} ms, "
                f"kept {kept[-1] * 1000:.2f} ms, bare SUM {bare[-1] * 1000:.1f} ms"
            )
    finally:
        store.close()
    result = {
        "read_after_record_s": statistics.median(fresh),
        "read_kept_s": statistics.median(kept),
        "lag_s": statistics.median(lag),
        "bare_sum_s": statistics.median(bare),
    }
    log(
        "| metric | value |\n|---|---:|\n"
        f"| read after a new record (median) | {result['read_after_record_s'] * 1000:.1f} ms |\n"
        f"| read, rating kept (median) | {result['read_kept_s'] * 1000:.2f} ms |\n"
        f"| lag, record acknowledged to balance showing it (median) | "
        f"{result['lag_s'] * 1000:.1f} ms |\n"
        f"| bare sqlite3 SUM(cost) of the customer's events (median) | "
        f"{result['bare_sum_s'] * 1000:.1f} ms |\n"
        f"| read after a record / bare | "
        f"{result['read_after_record_s'] / result['bare_sum_s']:.2f} |\n"
        f"| read kept / bare | {result['read_kept_s'] / result['bare_sum_s']:.3f} |"
    )
    return result


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bench.balance")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    arguments = parser.parse_args()
    measure(arguments.records, arguments.repeats)
