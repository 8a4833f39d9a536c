"""The embedded sink: each record is written to a local SQLite ledger before `record` returns.

Writing synchronously keeps the embedded Meter simple and its guarantee plain: a record
is committed (`synchronous=FULL`) when the call that made it returns, so a crash loses
nothing that was recorded. It costs one small transaction per record (see `make bench`),
which is small beside the model call being metered.
"""

from __future__ import annotations

import threading
from pathlib import Path

from payoff.catalog import Catalog
from payoff.core.periods import Period
from payoff.problems import Problem
from payoff.sdk.deadletter import DeadLetters
from payoff.service.ingest import ingest_lines
from payoff.store import open_store

# Usage received up to the end of time counts: the budget wants everything in the ledger.
_AS_OF_ALL_US = 2**62


class EmbeddedSink:
    def __init__(self, path: Path, catalog: Catalog, dead_letters: DeadLetters) -> None:
        self.path = path
        self.catalog = catalog
        self.dead_letters = dead_letters
        self.store = open_store(path)
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, record: bytes) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("this Meter is closed")
            problems: list[Problem] = []
            ingest_lines(
                self.store,
                [(1, record)],
                catalog=self.catalog,
                on_problem=problems.append,
                source=str(self.path),
                workers=0,
            )
        for problem in problems:
            self.dead_letters.add(record, problem)

    def period_spend_nanousd(self, customer: str, period: Period) -> int:
        """What the ledger already holds for the customer in the period (priced steps)."""
        with self._lock:
            days = self.store.usage_by_day(period.start_us, period.end_us, _AS_OF_ALL_US, customer)
        return sum(day.cost_nanousd for day in days)

    def flush(self, timeout_s: float | None = None) -> bool:
        return True  # every record is committed before submit returns

    def close(self, timeout_s: float | None = None) -> bool:
        with self._lock:
            if not self._closed:
                self._closed = True
                self.store.close()
        return True
