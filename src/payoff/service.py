"""Use cases: load from the store, call the core, save. The only caller of the clock."""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from payoff.catalog import Catalog
from payoff.core.errors import RecordError
from payoff.records import decode_record, record_id
from payoff.rows import RowBuilder, to_us
from payoff.store.protocol import (
    ACCEPTED,
    ACCEPTED_STATUS,
    CONFLICT,
    DUPLICATE,
    RECORD_KINDS,
    REJECTED,
    Row,
    Status,
    Store,
    TaskSummary,
    WriteBatch,
)

BATCH_RECORDS = 10_000
"""Records per transaction: large enough that commits are cheap, small enough for flat memory."""

MAX_PROBLEMS_KEPT = 1_000
"""Problems kept in memory for the summary; all of them still reach `on_problem`."""


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector during a bulk load.

    Ingest allocates millions of short-lived, acyclic objects (records, rows, tuples); the
    collector's repeated scans of them cost more than decoding itself (measured: about 2/3
    of decode time). Reference counting still frees everything; nothing here forms cycles.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def now_us() -> int:
    return to_us(dt.datetime.now(dt.UTC))


@dataclass(frozen=True)
class Problem:
    """A record that was rejected or conflicted, with where it came from."""

    line: int | None
    id: str | None
    status: str
    reason: str
    field: str | None = None
    source: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "line": self.line,
            "id": self.id,
            "status": self.status,
            "field": self.field,
            "reason": self.reason,
        }


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
        }

    @property
    def clean(self) -> bool:
        return self.rejected == 0 and self.conflicts == 0


Line = tuple[int, bytes]
ProblemSink = Callable[[Problem], None]


def numbered_lines(
    stream: BinaryIO, on_bytes: Callable[[int], None] | None = None
) -> Iterator[Line]:
    """(line number, line) for the non-blank lines of a binary stream, read lazily."""
    for number, line in enumerate(stream, start=1):
        if on_bytes is not None:
            on_bytes(len(line))
        if line.strip():
            yield number, line


class _Ingest:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        on_problem: ProblemSink | None,
        source: str | None,
        report: IngestReport,
    ) -> None:
        self.source = source
        self.store = store
        self.catalog = catalog
        self.on_problem = on_problem
        self.report = report

    def problem(self, problem: Problem) -> None:
        if problem.status == REJECTED:
            self.report.rejected += 1
        else:
            self.report.conflicts += 1
        if len(self.report.problems) < MAX_PROBLEMS_KEPT:
            self.report.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)

    def run(self, lines: Iterable[Line]) -> IngestReport:
        with _gc_paused():
            return self._run(lines)

    def _run(self, lines: Iterable[Line]) -> IngestReport:
        batch_lines: list[tuple[int, bytes]] = []
        for numbered in lines:
            batch_lines.append(numbered)
            if len(batch_lines) >= BATCH_RECORDS:
                self.write(batch_lines)
                batch_lines = []
        if batch_lines:
            self.write(batch_lines)
        return self.report

    def write(self, lines: list[tuple[int, bytes]]) -> None:
        received_at_us = now_us()
        add = RowBuilder(self.catalog, received_at_us).add
        batch = WriteBatch()
        problems: list[Problem] = []
        for number, line in lines:
            try:
                record = decode_record(line, number)
            except RecordError as exc:
                problems.append(
                    Problem(number, record_id(line), REJECTED, exc.reason, exc.field, self.source)
                )
                continue
            add(batch, record, number)
        if len(batch):
            result = self.store.write(batch, received_at_us)
            for kind in RECORD_KINDS:
                self.account(getattr(batch, kind), batch.lines[kind], getattr(result, kind),
                             problems)
        for problem in sorted(problems, key=lambda p: p.line or 0):
            self.problem(problem)

    def account(
        self, rows: list[Row], lines: list[int], statuses: list[Status], problems: list[Problem]
    ) -> None:
        accepted = statuses.count(ACCEPTED_STATUS)
        self.report.accepted += accepted
        if accepted == len(statuses):
            return
        for row, number, (status, reason) in zip(rows, lines, statuses, strict=True):
            if status == DUPLICATE:
                self.report.duplicates += 1
            elif status != ACCEPTED:
                assert status in (CONFLICT, REJECTED)
                ident = str(row[0])
                problems.append(Problem(number, ident, status, reason or status, None, self.source))


def ingest_lines(
    store: Store,
    lines: Iterable[Line],
    *,
    catalog: Catalog | None = None,
    on_problem: ProblemSink | None = None,
    source: str | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Ingest numbered JSON lines in batches; a bad line never stops the good ones landing.

    Pass the same `report` to several calls (one per file) to add their counts up.
    """
    ingest = _Ingest(store, catalog or Catalog(), on_problem, source, report or IngestReport())
    return ingest.run(lines)


def list_tasks(
    store: Store, customer: str | None = None, *, limit: int = 1000, offset: int = 0
) -> list[TaskSummary]:
    return store.tasks(customer, limit=limit, offset=offset)
