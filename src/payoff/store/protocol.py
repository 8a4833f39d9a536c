"""The narrow interface between payoff's use cases and a ledger backend.

A backend stores records idempotently and answers aggregate questions in SQL; the core
never sees raw rows. Every backend passes the same contract suite (tests/test_store.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
REJECTED = "rejected"


class RowShape(NamedTuple):
    """The rows of one record kind: which table, which columns, and what is compared.

    The first `key_length` columns are the idempotency key. The first `content_length`
    columns are what the record said: two rows with the same key are the same record (a
    duplicate) when their content is equal, and a conflict otherwise. The columns after
    them are derived (costs from the catalog, lifecycle status, time of receipt) and may
    differ between two sends of the same record. Comparing the stored content itself,
    rather than a hash of it, makes the check exact.

    The last column, `received_at_us`, is not in the rows a backend receives: the backend
    stamps it inside the write transaction, so that a record is never stamped earlier than
    it became visible (an invoice run as of that time would otherwise miss it for good).
    """

    table: str
    columns: tuple[str, ...]
    key_length: int
    content_length: int

    def index(self, column: str) -> int:
        return self.columns.index(column)

    @property
    def row_columns(self) -> tuple[str, ...]:
        """The columns of the rows a backend receives (all but the receipt time)."""
        assert self.columns[-1] == "received_at_us"
        return self.columns[:-1]


def _shape(
    table: str, key: tuple[str, ...], content: tuple[str, ...], derived: tuple[str, ...]
) -> RowShape:
    return RowShape(table, key + content + derived, len(key), len(key) + len(content))


EVENTS = _shape(
    "events",
    ("id",),
    (
        "occurred_at_us", "customer", "task", "task_type", "kind", "provider", "model",
        "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
        "reasoning_tokens", "visible", "batch", "quantity", "unit", "cost_given_nanousd",
        "attributes",
    ),
    ("cost_nanousd", "cost_visible_nanousd", "cost_source", "received_at_us"),
)  # fmt: skip
TASK_UPDATES = _shape(
    "task_updates",
    ("task", "status"),
    ("customer", "type", "occurred_at_us"),
    ("received_at_us",),
)
OUTCOMES = _shape(
    "outcomes",
    ("id",),
    ("task", "customer", "type", "value", "evidence_digest", "occurred_at_us"),
    ("received_at_us",),
)
ATTESTATIONS = _shape(
    "attestations",
    ("id",),
    ("outcome", "verdict", "occurred_at_us"),
    ("received_at_us",),
)
EVENT_COLUMNS = EVENTS.columns

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
    unpriced_events: int = 0
    """Event rows the catalog could not price; the store does not read it."""

    def __len__(self) -> int:
        return (
            len(self.events) + len(self.task_updates) + len(self.outcomes) + len(self.attestations)
        )


Status = tuple[str, str | None, str | None]
"""(ACCEPTED, DUPLICATE, CONFLICT or REJECTED; the reason; the field at fault, if one)."""

ACCEPTED_STATUS: Status = (ACCEPTED, None, None)
DUPLICATE_STATUS: Status = (DUPLICATE, None, None)


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
    def write(
        self,
        batch: WriteBatch,
        clock: Callable[[], int],
        check: Callable[[WriteBatch], None] | None = None,
    ) -> WriteResult: ...

    def stable_time(self, clock: Callable[[], int]) -> int: ...

    def tasks(
        self,
        customer: str | None = None,
        *,
        limit: int = 1000,
        offset: int = 0,
        task_id: str | None = None,
    ) -> list[TaskSummary]: ...

    def task_steps(self, task_id: str, *, limit: int, offset: int = 0) -> list[dict[str, Any]]: ...

    def task_types(self, customer: str | None = None) -> list[TaskTypeSummary]: ...

    def counts(self) -> LedgerCounts: ...

    def close(self) -> None: ...
