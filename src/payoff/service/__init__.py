"""Use cases: load from the store, call the core, save. The only caller of the clock.

The shells (CLI, HTTP API) parse, call one function here and format; they never read the
clock or the store themselves.
"""

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
from payoff.service.tasks import list_tasks

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
