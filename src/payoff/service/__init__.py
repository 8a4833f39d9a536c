"""Use cases: load from the store, call the core, save. The only caller of the clock.

The shells (CLI, HTTP API) parse, call one function here and format; they never read the
clock or the store themselves.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
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

# Loaded on first use: a command that reads tasks needs neither the ingest pipeline nor the
# price catalog it loads, and `from payoff.service import tasks` stays as quick as the module.
_MODULE_OF = {
    "BATCH_RECORDS": "payoff.service.ingest",
    "IngestReport": "payoff.service.ingest",
    "Problem": "payoff.problems",
    "ProblemSink": "payoff.service.ingest",
    "ingest_lines": "payoff.service.ingest",
    "list_tasks": "payoff.service.tasks",
    "now_us": "payoff.service.clock",
    "numbered_lines": "payoff.service.ingest",
}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'payoff.service' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
