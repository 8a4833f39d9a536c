"""Rating a month of N usage events for 100 customers, against a bare SQL GROUP BY.

payoff's side is one `invoice run` of the period (every customer on one of the three example
plans, drafts stored), in process. The baseline runs, with plain sqlite3 on the same ledger,
the aggregate queries an invoice run needs: usage by customer and day, tasks by customer,
day, type and status as of a time, outcome claims in received order, and the per-task
hidden tokens of a reasoning budget; it fetches every row and prices nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from bench.workload import MONTH, SEED, WORK
from payoff import demo
from payoff.core.periods import US_PER_DAY, Period
from payoff.demo import generate
from payoff.service import ingest_lines, invoices, plans
from payoff.store import open_store
from payoff.store.opening import packaged_head, upgrade_ledger

CUSTOMERS = 100
PLANS = Path(__file__).parent.parent / "examples" / "plans"
PLAN_NAMES = ("hybrid", "cost-plus", "per-outcome")
BUDGET = 20_000  # the hybrid plan's hidden_tokens_per_task_max


@dataclass(frozen=True)
class RatingResult:
    events: int
    customers: int
    payoff_seconds: list[float]
    bare_seconds: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.payoff_seconds) / statistics.median(self.bare_seconds)


def _generate(scale: float) -> Iterator[dict[str, Any]]:
    # Attestations are left out: the example plans verify no claims.
    for record in generate(seed=SEED, customers=CUSTOMERS, month=MONTH, scale=scale):
        if record.get("record") != "attestation":
            yield record


def _records(events: int) -> Iterator[dict[str, Any]]:
    """Demo records of 100 customers with `events` usage records, and their tasks' records.

    The scale is grown until the month holds at least `events` usage records; the excess is
    dropped from the start, inside the first (largest) customer, so every customer keeps
    its usage.
    """
    at_one = sum(1 for r in _generate(1.0) if "record" not in r)
    scale = events / at_one
    while (total := sum(1 for r in _generate(scale) if "record" not in r)) < events:
        scale *= 1.01
    excess = total - events
    for record in _generate(scale):
        if "record" not in record and excess:
            excess -= 1
            continue
        yield record


def ledger(events: int, log: Any = print) -> tuple[Path, int]:
    """A ledger of the workload with every customer subscribed; cached. (path, as-of time)."""
    source = hashlib.blake2b(Path(demo.__file__).read_bytes(), digest_size=4).hexdigest()
    path = WORK / f"rating-{events}-{source}.db"
    if not path.exists():
        WORK.mkdir(exist_ok=True)
        partial = path.with_suffix(".tmp.db")
        for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            stale.unlink(missing_ok=True)
        log(f"  building a ledger of {events:,} events for {CUSTOMERS} customers (not timed)...")
        store = open_store(partial)
        lines = ((n, msgspec.json.encode(r)) for n, r in enumerate(_records(events), start=1))
        report = ingest_lines(store, lines)
        assert report.rejected == 0, report.problems[:3]
        for name in PLAN_NAMES:
            plans.apply_plan(store, PLANS / f"{name}.yaml")
        every_day = (0, US_PER_DAY * 10**6, 2**62)  # windows are whole days
        customers = sorted({row.customer for row in store.usage_by_day(*every_day)})
        for index, customer in enumerate(customers):
            plans.subscribe(store, customer, PLAN_NAMES[index % 3], dt.date(2026, 11, 1))
        store.close()
        partial.replace(path)
    _migrated(path, log)
    with sqlite3.connect(path) as conn:
        received = conn.execute("SELECT max(received_at_us) FROM events").fetchone()[0]
    return path, received + 1


def _migrated(path: Path, log: Any) -> None:
    """Bring a cached ledger to this payoff's schema, once and not timed: a ledger cached by
    an older payoff would otherwise be migrated inside every timed run (filling a new
    summary reads every event, which is not what a run costs)."""
    before = upgrade_ledger(path)
    if before != packaged_head():
        log(f"  migrated the cached ledger {path.name} from revision {before} (not timed)")


BARE_QUERIES = (
    # usage by customer and day
    """SELECT customer, (occurred_at_us - :start) / 86400000000 AS day,
              sum(input_tokens - cache_read_tokens - cache_write_tokens), sum(cache_read_tokens),
              sum(cache_write_tokens), sum(output_tokens), coalesce(sum(cost_nanousd), 0),
              sum(CASE WHEN cost_nanousd IS NULL THEN 1 ELSE 0 END)
       FROM events WHERE occurred_at_us >= :start AND occurred_at_us < :end
         AND received_at_us <= :as_of GROUP BY customer, day""",
    # tasks by the day they ended, as of a time
    """WITH latest AS (
         SELECT task, status, occurred_at_us, row_number() OVER (PARTITION BY task
           ORDER BY occurred_at_us DESC, CASE WHEN status = 'open' THEN 1 ELSE 0 END) AS rank
         FROM task_updates WHERE received_at_us <= :as_of)
       SELECT t.customer, (coalesce(CASE WHEN l.status <> 'open' THEN l.occurred_at_us END,
                                    t.started_at_us) - :start) / 86400000000 AS day,
              t.type, coalesce(l.status, 'open'), count(*)
       FROM tasks t LEFT JOIN latest l ON l.task = t.id AND l.rank = 1
       WHERE coalesce(CASE WHEN l.status <> 'open' THEN l.occurred_at_us END, t.started_at_us)
             >= :start
         AND coalesce(CASE WHEN l.status <> 'open' THEN l.occurred_at_us END, t.started_at_us)
             < :end AND t.created_at_us <= :as_of
       GROUP BY t.customer, day, t.type, coalesce(l.status, 'open')""",
    # outcome claims in received order
    """SELECT customer, (occurred_at_us - :start) / 86400000000, type, value FROM outcomes
       WHERE occurred_at_us >= :start AND occurred_at_us < :end AND received_at_us <= :as_of
       ORDER BY received_at_us, occurred_at_us, id""",
    # hidden tokens over a per-task budget
    """SELECT customer, (started - :start) / 86400000000 AS day,
              sum(CASE WHEN hidden > :budget THEN hidden - :budget ELSE 0 END)
       FROM (SELECT customer, min(occurred_at_us) AS started,
                    sum(input_tokens + output_tokens)
                    - sum(CASE WHEN visible THEN output_tokens - reasoning_tokens ELSE 0 END)
                    AS hidden
             FROM events WHERE occurred_at_us >= :start AND occurred_at_us < :end
               AND received_at_us <= :as_of AND task IS NOT NULL GROUP BY customer, task)
       GROUP BY customer, day""",
)


def bare_seconds(path: Path, as_of_us: int) -> float:
    period = Period.month(MONTH)
    parameters = {
        "start": period.start_us,
        "end": period.end_us,
        "as_of": as_of_us,
        "budget": BUDGET,
    }
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    for query in BARE_QUERIES:
        conn.execute(query, parameters).fetchall()
    seconds = time.perf_counter() - start
    conn.close()
    return seconds


def payoff_seconds(path: Path, as_of_us: int) -> float:
    store = open_store(path)
    start = time.perf_counter()
    documents = invoices.run_invoices(store, MONTH, as_of_us=as_of_us)
    seconds = time.perf_counter() - start
    store.close()
    assert len(documents) == CUSTOMERS, len(documents)
    return seconds


def measure(events: int, repeats: int, log: Any = print) -> RatingResult:
    path, as_of_us = ledger(events, log)
    payoff, bare = [], []
    for repeat in range(1, repeats + 1):
        payoff.append(payoff_seconds(path, as_of_us))
        bare.append(bare_seconds(path, as_of_us))
        log(
            f"  repeat {repeat}/{repeats}: invoice run {payoff[-1]:.2f} s, "
            f"bare GROUP BY {bare[-1]:.2f} s"
        )
    return RatingResult(events, CUSTOMERS, payoff, bare)
