"""Use cases: load from the store, call the core, save. The only caller of the clock."""

from __future__ import annotations

from payoff.problems import Problem
from payoff.service.clock import now_us
from payoff.service.ingest import (
    BATCH_RECORDS,
    IngestReport,
    ProblemSink,
    ingest_lines,
    numbered_lines,
)
from payoff.store.protocol import Store, TaskSummary

__all__ = [
    "BATCH_RECORDS",
    "IngestReport",
    "Problem",
    "ProblemSink",
    "ingest_lines",
    "list_tasks",
    "now_us",
    "numbered_lines",
]


def list_tasks(
    store: Store, customer: str | None = None, *, limit: int = 1000, offset: int = 0
) -> list[TaskSummary]:
    return store.tasks(customer, limit=limit, offset=offset)
