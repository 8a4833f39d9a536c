"""The narrow interface between payoff's use cases and a ledger backend.

A backend stores records idempotently and answers aggregate questions in SQL; the core
never sees raw rows. Every backend passes the same contract suite (tests/test_store.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
REJECTED = "rejected"

# Column order of the rows a backend receives. The first columns are the idempotency key;
# `received_at_us` is the last, and is not part of a record's content: two rows with the
# same key are the same record (a duplicate) when every other column is equal, and a
# conflict otherwise. Comparing the stored content itself, rather than a hash of it, makes
# the check exact.
EVENT_COLUMNS = (
    "id",
    "occurred_at_us",
    "customer",
    "task",
    "task_type",
    "kind",
    "provider",
    "model",
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "visible",
    "batch",
    "quantity",
    "unit",
    "cost_nanousd",
    "cost_visible_nanousd",
    "cost_source",
    "attributes",
    "received_at_us",
)
TASK_UPDATE_COLUMNS = (
    "task",
    "status",
    "customer",
    "type",
    "occurred_at_us",
    "received_at_us",
)
OUTCOME_COLUMNS = (
    "id",
    "task",
    "customer",
    "type",
    "value",
    "evidence_digest",
    "status",
    "occurred_at_us",
    "received_at_us",
)
ATTESTATION_COLUMNS = ("id", "outcome", "verdict", "occurred_at_us", "received_at_us")

Row = tuple[object, ...]

RECORD_KINDS = ("events", "task_updates", "outcomes", "attestations")
"""The row lists of a WriteBatch and a WriteResult, in the order they are written."""


@dataclass
class WriteBatch:
    """Rows of one transaction, by record kind, in the column orders above."""

    events: list[Row] = field(default_factory=list)
    task_updates: list[Row] = field(default_factory=list)
    outcomes: list[Row] = field(default_factory=list)
    attestations: list[Row] = field(default_factory=list)
    lines: dict[str, list[int]] = field(default_factory=lambda: {kind: [] for kind in RECORD_KINDS})
    """Where each row came from (a line number), by kind; the store does not read it."""

    def __len__(self) -> int:
        return (
            len(self.events) + len(self.task_updates) + len(self.outcomes) + len(self.attestations)
        )


Status = tuple[str, str | None]
"""(one of ACCEPTED, DUPLICATE, CONFLICT, REJECTED; the reason when not accepted)."""

ACCEPTED_STATUS: Status = (ACCEPTED, None)
DUPLICATE_STATUS: Status = (DUPLICATE, None)


@dataclass
class WriteResult:
    """Per-row statuses, aligned with the rows of the WriteBatch."""

    events: list[Status]
    task_updates: list[Status]
    outcomes: list[Status]
    attestations: list[Status]


@dataclass(frozen=True)
class TaskSummary:
    id: str
    customer: str
    type: str | None
    status: str
    steps: int
    tokens_total: int
    tokens_visible: int
    cost_nanousd: int
    cost_visible_nanousd: int
    unpriced_steps: int

    @property
    def tokens_hidden(self) -> int:
        return self.tokens_total - self.tokens_visible

    @property
    def cost_hidden_nanousd(self) -> int:
        return self.cost_nanousd - self.cost_visible_nanousd


@dataclass(frozen=True)
class TaskTypeSummary:
    type: str | None
    tasks: int
    failed_tasks: int
    steps: int
    tokens_total: int
    tokens_visible: int
    cost_nanousd: int
    unpriced_steps: int
    outcomes: int

    @property
    def tokens_hidden(self) -> int:
        return self.tokens_total - self.tokens_visible


@dataclass(frozen=True)
class LedgerCounts:
    customers: int
    events: int
    unpriced_events: int
    tasks: int
    outcomes: int
    attestations: int


class Store(Protocol):
    def write(self, batch: WriteBatch, now_us: int) -> WriteResult: ...

    def tasks(
        self, customer: str | None = None, *, limit: int = 1000, offset: int = 0
    ) -> list[TaskSummary]: ...

    def task_types(self, customer: str | None = None) -> list[TaskTypeSummary]: ...

    def counts(self) -> LedgerCounts: ...

    def close(self) -> None: ...
