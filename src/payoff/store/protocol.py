"""The narrow interface between payoff's use cases and a ledger backend.

A backend stores records idempotently and answers aggregate questions in SQL; the core
never sees raw rows. Every backend passes the same contract suite (tests/test_store.py,
tests/test_store_contract.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

if TYPE_CHECKING:
    from payoff.core.buckets import Bucket
    from payoff.core.chain import ChainEntry
    from payoff.core.costing import PriceCatalog
    from payoff.core.credit_notes import CreditNote
    from payoff.core.credits import CreditEntry
    from payoff.core.invoicing import Invoice
    from payoff.core.ledger_rows import LedgerRows
    from payoff.core.recosting import BilledInvoice
    from payoff.core.reservations import Reservation, SpendLimit
    from payoff.store.access import StoredKey, StoredSecret
    from payoff.store.advice import TaskSelection, TaskTrialRow
    from payoff.store.audit import IssuedDocument, RowsWanted
    from payoff.store.billing import (
        Customer,
        DayBudget,
        DayTasks,
        DayUsage,
        Finalizing,
        HourUsage,
        KeyedUsage,
        StoredCreditNote,
        StoredInvoice,
        StoredPlan,
        StoredSeatCount,
        Subscription,
    )
    from payoff.store.contracts import StoredContract
    from payoff.store.credits import CreditWrite
    from payoff.store.economics import TaskRow
    from payoff.store.evidence import EvidenceOpening
    from payoff.store.outcomes import StoredOutcome, StoredVerdict
    from payoff.store.reservations import Decide
    from payoff.store.signals import StoredSignal
    from payoff.store.tasks import TaskActivity

ACCEPTED = "accepted"
DUPLICATE = "duplicate"
CONFLICT = "conflict"
REJECTED = "rejected"


class RowShape(NamedTuple):
    """The rows of one record kind: which table, which columns, and what is compared.

    The first `key_length` columns are the idempotency key. The first `content_length`
    columns are what the record said: two rows with the same key are the same record (a
    duplicate) when their content is equal, and a conflict otherwise. The columns after
    them are derived (costs from the catalog, the time of receipt) and may
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

    def column_index(self, column: str) -> int:
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
        "reasoning_tokens", "usage_details", "visible", "batch", "quantity", "unit",
        "cost_given_nanousd", "attributes",
    ),
    ("cost_nanousd", "cost_visible_nanousd", "cost_source", "cost_catalog", "received_at_us"),
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
SIGNALS = _shape(
    "signals",
    ("id",),
    ("task", "outcome", "name", "occurred_at_us", "attributes"),
    ("customer", "about_task", "received_at_us"),
)
"""A signal's `customer` and `about_task` (the task it, or its outcome, names) are derived
by the store when it is written: the rows a backend receives end with `attributes`."""
EVENT_COLUMNS = EVENTS.columns

Row = tuple[Any, ...]
"""One record's column values (str, int or None), in its RowShape's order: positional,
since the ingest path builds and compares 100,000 of them a second."""

RECORD_KINDS = ("events", "task_updates", "outcomes", "attestations", "signals")


"""The row lists of a WriteBatch and a WriteResult, in the order they are written."""


@dataclass
class WriteBatch:
    """Rows of one transaction, by record kind, in the column orders above."""

    events: list[Row] = field(default_factory=list)
    task_updates: list[Row] = field(default_factory=list)
    outcomes: list[Row] = field(default_factory=list)
    attestations: list[Row] = field(default_factory=list)
    signals: list[Row] = field(default_factory=list)
    lines: dict[str, list[int]] = field(default_factory=lambda: {kind: [] for kind in RECORD_KINDS})
    """Where each row came from (a line number), by kind; the store does not read it."""
    unpriced_events: int = 0
    """Event rows the catalog could not price; the store does not read it."""
    price_catalog: PriceCatalog | None = None
    """The catalog the event rows name in `cost_catalog`: stored with them when new."""

    def __len__(self) -> int:
        return (
            len(self.events)
            + len(self.task_updates)
            + len(self.outcomes)
            + len(self.attestations)
            + len(self.signals)
        )


class WriteStatus(NamedTuple):
    """What became of one row of a write."""

    status: str
    """ACCEPTED, DUPLICATE, CONFLICT or REJECTED."""
    reason: str | None
    """Why a row was not accepted, for the person who sent it."""
    field: str | None
    """The record's field at fault, when one is."""


ACCEPTED_STATUS = WriteStatus(ACCEPTED, None, None)
DUPLICATE_STATUS = WriteStatus(DUPLICATE, None, None)


@dataclass
class WriteResult:
    """Per-row statuses, aligned with the rows of the WriteBatch."""

    events: list[WriteStatus]
    task_updates: list[WriteStatus]
    outcomes: list[WriteStatus]
    attestations: list[WriteStatus]
    signals: list[WriteStatus]


STAGED = "staged"
"""An arriving span kept until its run is judged."""
KNOWN = "known"
"""An arriving span already received (a re-send): nothing changes."""
SKIPPED = "skipped"
"""An arriving span of a trace without GenAI spans: not kept."""


class ArrivingSpan(NamedTuple):
    """An OpenTelemetry span to keep until its run is judged (see store/spans.py)."""

    trace: str
    span: str
    needed: bool
    """A step or run, or a span of a trace that has one in the same export; otherwise kept
    only when its trace already has spans waiting (it may link them to their run)."""
    body: bytes
    """What the judgement reads of the span, encoded by its source."""


class QuietConversation(NamedTuple):
    """A conversation task that heard nothing for a while, with its task's owner and status."""

    task: str
    customer: str | None
    status: str | None
    """None when no record of the task was stored (every one of them was refused)."""
    last_end_us: int
    run_end_us: int | None
    run_failed: bool | None


class ConversationRow(NamedTuple):
    """What is learnt of a conversation: its latest moment, and its latest root run."""

    last_end_us: int
    run_end_us: int
    run_failed: bool


@dataclass
class SpanWork:
    """What a settlement judges: spans waiting in traces judged complete, spans of quiet
    traces, quiet conversations, and the spans of those traces decided earlier (ancestry
    only); bodies as staged."""

    now_us: int
    touched: list[bytes]
    quiet: list[bytes]
    conversations: list[QuietConversation]
    known: list[bytes] = field(default_factory=list)
    settled_through: SettleMark | None = None
    """Where the traces settled in this work end: the window's end, or where the judgement
    stopped when the window held more traces than one settlement takes."""


class SettleMark(NamedTuple):
    """A place in the order traces settle in: the arrival of their last span, then the trace.
    A window of settled traces runs from after one mark to before a moment."""

    last_us: int
    trace: str = ""


@dataclass
class SpanSettlement:
    """What a judgement decided: rows to write, spans decided, conversations learnt of, and
    conversations to forget (closed, or ended by their application)."""

    batch: WriteBatch
    decided: list[tuple[str, str]] = field(default_factory=list)
    conversations: dict[str, ConversationRow] = field(default_factory=dict)
    forget: list[str] = field(default_factory=list)


class RecostSelection(NamedTuple):
    """Which steps a re-pricing examines: model calls the catalog prices (never a cost a
    record gave), unpriced ones only unless `include_priced`."""

    customer: str | None = None
    since_us: int | None = None
    """Only steps that occurred at or after this time."""
    include_priced: bool = False


class CostedStep(NamedTuple):
    """A model call as a re-pricing reads it: what prices it, and its cost now."""

    seq: int
    customer: str
    occurred_at_us: int
    received_at_us: int
    costed_at_us: int | None
    """When a re-pricing set the cost; None: the cost is the one set at ingest."""
    provider: str
    model: str
    batch: bool
    visible: bool
    input_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    usage_details: str | None
    cost_nanousd: int | None
    cost_visible_nanousd: int | None
    cost_source: str | None
    cost_catalog: int | None

    @property
    def cost_set_at_us(self) -> int:
        """Since when the step has held its cost."""
        return self.received_at_us if self.costed_at_us is None else self.costed_at_us


class CostRevision(NamedTuple):
    """A step's new cost, and the catalog that produced it."""

    seq: int
    cost_nanousd: int | None
    cost_visible_nanousd: int | None
    cost_source: str | None
    cost_catalog: int


class RecostBatch(NamedTuple):
    """What one transaction of a re-pricing did."""

    examined: int
    last_seq: int
    """Where the next batch starts (after it)."""
    revisions: list[CostRevision]


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


# -- the contract ------------------------------------------------------------------------
#
# One protocol per concern. A use case names only the roles it uses (an invoice run needs
# `UsageAggregates` and `BillingStore`, not the API keys), so a fake or a new backend can
# implement a slice, and reading a signature tells what a function may touch. `Store` is all
# of them: what a backend implements and `open_store` returns. tests/test_store_contract.py
# checks that every public method of the SQL backend belongs to exactly one role.


class RecordStore(Protocol):
    """Idempotent writes of records, and the housekeeping of the file they land in."""

    def write(
        self,
        batch: WriteBatch,
        clock: Callable[[], int],
        before_write: Callable[[WriteBatch], None] | None = None,
    ) -> WriteResult:
        """Write a batch in one transaction, idempotently by each record's key.

        Each row is accepted, a duplicate (same key, same content) or a conflict (same key,
        other content); the result lists one status per row, in the batch's order.
        `before_write` runs inside the transaction, under the write lock, before anything
        is written: it may take rows out of the batch (a verdict the lifecycle refuses).
        `clock` stamps `received_at_us` inside the transaction. Either every accepted row
        is stored or none.
        """
        ...

    def grouped_writes(self, rows: int) -> AbstractContextManager[None]:
        """Within it, `write` commits once at least `rows` rows have been written since the
        last commit (and when it ends), not after every batch: a bulk load of random ids
        rewrites each index page once a commit, so fewer, larger commits write far less.

        Each batch still stamps, checks and classifies as `write` says (a batch with a
        `before_write` check commits the ones before it first, so that the check sees them);
        what a crash (or an error, which ends the group) loses is every batch since the
        last commit.
        """
        ...

    def committed_now_us(self, clock: Callable[[], int]) -> int:
        """A time at or before which every record that will ever be stamped has committed."""
        ...

    def counts(self) -> LedgerCounts:
        """How many customers, events, tasks, outcomes and attestations are stored."""
        ...

    def backup_to(self, path: Path, progress: Callable[[int, int], None] | None = None) -> None:
        """Copy the ledger as committed at one moment into a new file at `path`.

        Writers go on while it copies; the copy holds every transaction committed before it
        began and none after. `progress(pages_copied, pages_total)` is called after each step.
        """
        ...

    def defer_checkpoints(self) -> bool:
        """Stop commits from doing maintenance inline (SQLite: folding the WAL).

        True when the caller must now call `checkpoint()` from a thread of its own; False
        when the backend has nothing to fold (the caller then never needs to).
        """
        ...

    def checkpoint(self) -> None:
        """Fold pending maintenance without blocking writers; a no-op when there is none."""
        ...

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...


class SpanStore(Protocol):
    """OpenTelemetry spans kept until their run is judged (store/spans.py)."""

    def settle_spans(
        self,
        arriving: Sequence[ArrivingSpan],
        clock: Callable[[], int],
        settle: Callable[[SpanWork], SpanSettlement],
        *,
        judge_arriving: bool = True,
        settled_between: tuple[SettleMark, int] | None = None,
        quiet_before_us: int | None = None,
        forget_before_us: int | None = None,
    ) -> tuple[SpanSettlement, WriteResult, list[str]]:
        """Stage, judge and write in one transaction; see SpanStaging.settle_spans."""
        ...

    def pending_spans(self) -> int:
        """Spans staged and not yet judged."""
        ...


class TaskReads(Protocol):
    """Tasks with their steps and totals, as the CLI, the API and the SDK show them."""

    def tasks(
        self,
        customer: str | None = None,
        *,
        limit: int = 1000,
        offset: int = 0,
        task_id: str | None = None,
    ) -> list[TaskSummary]:
        """Tasks ordered by customer and id, each with its steps' token and cost totals."""
        ...

    def task_steps(self, task_id: str, *, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """A task's steps in time order, as stored (costs in nano-USD, times in µs)."""
        ...

    def task_types(self, customer: str | None = None) -> list[TaskTypeSummary]:
        """Totals by task type: tasks, failures, steps, tokens, cost, outcomes."""
        ...

    def task_activity(
        self, start_us: int, end_us: int, customer: str | None = None
    ) -> list[TaskActivity]:
        """Per customer and task type: tasks started in `[start, end)` and what they cost."""
        ...

    def task_types_of(self, ids: Iterable[str]) -> dict[str, str | None]:
        """The type of each known task among `ids` (unknown ids are left out)."""
        ...


class UsageAggregates(Protocol):
    """Usage summed by the keys rating and economics need, over a half-open period.

    Every question is "sum these buckets, grouped by these keys, over [start, end), as
    received by `as_of_us`": the shape a rollup table or a columnar events engine answers
    without the core ever seeing a raw row.
    """

    def usage_by_day(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[DayUsage]:
        """Token classes, cost and custom quantities by customer, UTC day, kind and model."""
        ...

    def usage_by_key(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[KeyedUsage]:
        """`usage_by_day` by task type, provider and model besides: for filtered charges."""
        ...

    def hidden_over_budget(
        self,
        start_us: int,
        end_us: int,
        as_of_us: int,
        classes: Sequence[str],
        budget: int,
        customer: str | None = None,
    ) -> list[DayBudget]:
        """Per customer and day: the tokens of `classes` that tasks spent beyond `budget`."""
        ...

    def usage_by_hour(
        self, start_us: int, end_us: int, as_of_us: int, customers: Sequence[str]
    ) -> list[HourUsage]:
        """Per customer and hour from `start_us`: tokens by class, of the customers' events
        received by `as_of_us` (for usage limits by window: finer than the daily rollups)."""
        ...

    def tasks_by_day(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[DayTasks]:
        """Tasks that ended in the period, by customer, day, type and final status."""
        ...

    def usage_buckets(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[Bucket]:
        """Usage by customer, task and pricing key, for re-costing under scenarios."""
        ...

    def task_rows(self, start_us: int, end_us: int, customer: str | None = None) -> list[TaskRow]:
        """Each task touched in the period with its type, status and when it ended."""
        ...


class AdviceReads(Protocol):
    """The tasks of one type and period, a row each, and the outcomes claimed for them:
    streamed, so that budget advice holds a task's figures, never its events."""

    def task_trials(self, selection: TaskSelection) -> Iterator[TaskTrialRow]:
        """Each selected task with its hidden tokens, cost and unpriced steps, by task id."""
        ...

    def outcomes_of_tasks(self, selection: TaskSelection) -> Iterator[StoredOutcome]:
        """The outcomes claimed for the selected tasks, by outcome id."""
        ...


class BillingStore(Protocol):
    """Plans, customers and subscriptions, invoices and credit notes."""

    def put_plan(
        self,
        plan_id: str,
        version: int,
        currency: str,
        body: dict[str, Any],
        digest: str,
        now_us: int,
    ) -> bool:
        """Store a plan version; False when the same body is already stored under it."""
        ...

    def get_plan(self, plan_id: str, version: int | None = None) -> StoredPlan | None:
        """A plan version, or its newest version when `version` is None."""
        ...

    def list_plans(self) -> list[StoredPlan]:
        """Every stored plan version."""
        ...

    def known_types(self) -> tuple[set[str], set[str]]:
        """The task types and outcome types the ledger has seen."""
        ...

    def add_customer(
        self,
        customer: str,
        name: str | None,
        now_us: int,
        *,
        address: str | None = None,
        email: str | None = None,
        tax_id: str | None = None,
    ) -> bool:
        """Register a customer, or update the details given; False when it was already known."""
        ...

    def get_customer(self, customer: str) -> Customer | None:
        """A registered customer with its contact details, or None."""
        ...

    def list_customers(self, *, limit: int, offset: int = 0) -> list[Customer]:
        """Registered customers by id, one page of them."""
        ...

    def subscribe(
        self, customer: str, plan_id: str, version: int, starts_at_us: int, now_us: int
    ) -> None:
        """Put a customer on a plan version from a time, ending the running subscription."""
        ...

    def end_subscription(self, customer: str, ends_at_us: int, now_us: int) -> bool:
        """End the running subscription; False when there is none."""
        ...

    def subscriptions(
        self, start_us: int, end_us: int, customer: str | None = None
    ) -> list[Subscription]:
        """The subscriptions that overlap `[start, end)`."""
        ...

    def set_seats(self, customer: str, effective_at_us: int, seats: int, now_us: int) -> bool:
        """Record a customer's seat count from the start of a day (append-only); False when
        the count last recorded for that day is already this one."""
        ...

    def seat_counts(self, customer: str | None, as_of_us: int) -> list[StoredSeatCount]:
        """Seat counts recorded by `as_of_us` (every customer's, or one's), by customer, in
        the order recorded."""
        ...

    def task_updates_received_between(self, customer: str, after_us: int, until_us: int) -> bool:
        """Whether a task status change for the customer arrived in `(after, until]`."""
        ...

    def received_between(
        self, customer: str, start_us: int, end_us: int, after_us: int, until_us: int
    ) -> bool:
        """Whether usage of `[start, end)` for the customer arrived in `(after, until]`."""
        ...

    def save_drafts(self, drafts: Sequence[Invoice], as_of_us: int, now_us: int) -> None:
        """Store draft invoices in one transaction, each replacing its period's draft."""
        ...

    def get_invoice(self, invoice_id: str) -> StoredInvoice | None:
        """An invoice by id, or None."""
        ...

    def list_invoices(
        self,
        customer: str | None = None,
        period: str | None = None,
        status: str | None = None,
        *,
        statuses: Sequence[str] = (),
        since_period: str | None = None,
        limit: int | None = ...,
        offset: int = 0,
    ) -> list[StoredInvoice]:
        """Invoices ordered by period, customer and id, filtered as asked."""
        ...

    def set_invoice_status(
        self,
        invoice_id: str,
        expected: str,
        new: str,
        now_us: int,
        credits: CreditWrite | None = None,
    ) -> bool:
        """Move an invoice from `expected` to `new`; False when it was not `expected`.
        `credits` computes from the customer's wallet what to append to it in the same
        transaction (a void gives back what the invoice drew)."""
        ...

    def finalize_invoice(
        self,
        invoice_id: str,
        finalizing: Finalizing,
        before_write: Callable[[], Sequence[CreditNote]] | None = None,
        credits: CreditWrite | None = None,
    ) -> str | None:
        """Finalize the draft whose document has `finalizing.draft_digest`, with the next
        number (never reused) and the credit notes `before_write` returns (it runs first,
        under the write lock), and the credit entries `credits` computes from the
        customer's wallet (the draw-down), in one transaction; None when it is not that
        draft."""
        ...

    def get_credit_note(self, note_id: str) -> StoredCreditNote | None:
        """A credit note with its number and time of issue; None when there is none."""
        ...

    def credit_notes(
        self, invoice: str | None = None, customer: str | None = None
    ) -> list[CreditNote]:
        """Credit notes against an invoice or of a customer, in the order they were issued."""
        ...


class CreditStore(Protocol):
    """Each customer's wallet: credit entries, appended by id, never edited."""

    def credit_entries(self, customer: str) -> list[CreditEntry]:
        """A customer's credit entries, by effective instant then id."""
        ...

    def write_credits(self, customer: str, write: CreditWrite, now_us: int) -> list[CreditEntry]:
        """Append what `write` computes from the wallet as stored, under the write lock, in
        one transaction; the entries that were new. An id stored with other content is
        refused (CreditConflict)."""
        ...


class ReservationStore(Protocol):
    """Amounts held against wallets while tasks run."""

    def hold_reservation(
        self, customer: str, reservation_id: str, decide: Decide
    ) -> tuple[Reservation, bool]:
        """Store the reservation `decide` grants from the wallet and the customer's held
        reservations (and the one of `reservation_id`, whatever its status), under the
        write lock, in one transaction; True when it is new."""
        ...

    def settle_reservation(
        self, reservation_id: str, cost_minor: int, now_us: int
    ) -> Reservation | None:
        """Close a held reservation with its actual cost; None when there is none."""
        ...

    def get_reservation(self, reservation_id: str) -> Reservation | None:
        """A reservation by id, or None."""
        ...

    def put_spend_limit(self, customer: str, limit: SpendLimit, now_us: int) -> None:
        """Set a customer's spend limits, replacing the ones before."""
        ...

    def spend_limit(self, customer: str) -> SpendLimit | None:
        """A customer's spend limits, or None."""
        ...

    def reservations(self, customer: str) -> list[Reservation]:
        """A customer's reservations, oldest first."""
        ...


class ContractStore(Protocol):
    """Outcome contracts: versions kept immutably, as plans are."""

    def put_contract(
        self,
        contract_id: str,
        version: int,
        outcome: str,
        body: dict[str, Any],
        digest: str,
        now_us: int,
    ) -> bool:
        """Store a contract version; False when the same body is already stored under it."""
        ...

    def get_contract(self, contract_id: str, version: int | None = None) -> StoredContract | None:
        """A contract version, or its newest version when `version` is None."""
        ...

    def list_contracts(self) -> list[StoredContract]:
        """Every stored contract version, by id and version."""
        ...


class OutcomeStore(Protocol):
    """Outcome claims and the verdicts given on them (attestations and decisions)."""

    def get_outcomes(self, ids: Iterable[str]) -> dict[str, StoredOutcome]:
        """The stored outcomes among `ids`."""
        ...

    def outcomes_in(
        self,
        claimed_from_us: int,
        start_us: int,
        end_us: int,
        as_of_us: int,
        customer: str | None = None,
    ) -> list[StoredOutcome]:
        """Outcomes claimed since `claimed_from_us` whose verdicts may fall in the period."""
        ...

    def verdicts_in(
        self,
        claimed_from_us: int,
        start_us: int,
        end_us: int,
        as_of_us: int,
        customer: str | None = None,
    ) -> dict[str, list[StoredVerdict]]:
        """The verdicts received by `as_of_us` on the outcomes `outcomes_in` returns."""
        ...

    def stored_attestations(self, ids: Iterable[str]) -> set[str]:
        """The attestation ids among `ids` that are already stored."""
        ...

    def list_outcome_claims(
        self, customer: str | None = None, *, limit: int = ..., offset: int = 0
    ) -> list[StoredOutcome]:
        """Outcome claims in time order."""
        ...

    def verdicts_for(
        self, ids: Iterable[str], as_of_us: int | None = None
    ) -> dict[str, list[StoredVerdict]]:
        """The verdicts on each outcome among `ids`, in the order given."""
        ...

    def add_decision(
        self,
        outcome: str,
        action: str,
        by: str,
        reason: str | None,
        at_us: int,
        now_us: int,
        before_write: Callable[[], None] | None = None,
    ) -> None:
        """Append an auditor's or operator's decision; `before_write` runs under the write lock."""
        ...

    def outcomes_moved(
        self,
        customer: str,
        claimed_from_us: int,
        received_after_us: int,
        until_us: int,
        period_end_us: int,
    ) -> bool:
        """Whether outcomes or verdicts that bear on a period arrived in the window."""
        ...

    def verdicts_received_between(self, customer: str, after_us: int, until_us: int) -> bool:
        """Whether a verdict on the customer's outcomes arrived in `(after, until]`."""
        ...

    def signals_about(
        self, tasks: Iterable[str], as_of_us: int | None = None
    ) -> dict[str, list[StoredSignal]]:
        """The signals about each of these tasks (received by `as_of_us`), by task, in time
        order: those naming the task, or one of its outcomes."""
        ...

    def signals_received_between(self, customer: str, after_us: int, until_us: int) -> bool:
        """Whether a signal about one of the customer's tasks arrived in `(after, until]`."""
        ...

    def customers_of_subjects(
        self, tasks: Iterable[str], outcomes: Iterable[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The customer of each stored task, and of each stored outcome, among these ids."""
        ...

    def add_evidence_opening(self, opening: EvidenceOpening) -> None:
        """Keep an opening of an outcome's committed evidence, matched or not."""
        ...

    def forget_evidence(self, outcome: str) -> None:
        """Erase the evidence kept with an outcome's openings (the openings stay)."""
        ...

    def evidence_openings(self, outcomes: Iterable[str]) -> dict[str, list[EvidenceOpening]]:
        """Every opening of these outcomes' evidence, by outcome, in the order made."""
        ...


class AccessStore(Protocol):
    """API keys (stored hashed) and the customers' signing secrets."""

    def customer_exists(self, customer: str) -> bool:
        """Whether the customer is known to the ledger."""
        ...

    def add_key(
        self, key_id: str, key_sha256: str, scope: str, name: str | None, now_us: int
    ) -> None:
        """Store a new key's hash and scope."""
        ...

    def key_by_hash(self, key_sha256: str) -> StoredKey | None:
        """The key with this hash, revoked or not, or None."""
        ...

    def list_keys(self) -> list[StoredKey]:
        """Every key, without its secret."""
        ...

    def revoke_key(self, key_id: str, now_us: int) -> bool:
        """Revoke a key; False when it is unknown or already revoked."""
        ...

    def add_secret(self, customer: str, secret: str, now_us: int, old_retire_at_us: int) -> None:
        """Store a new signing secret; the current ones retire at `old_retire_at_us`."""
        ...

    def secrets(self, customer: str, now_us: int) -> list[StoredSecret]:
        """The customer's secrets still valid at `now_us`, newest first."""
        ...


class AuditStore(Protocol):
    """What verifying reads: rows and finalized documents as stored, the chain, the file."""

    def ledger_rows(self, wanted: RowsWanted) -> Iterator[LedgerRows]:
        """Each wanted customer's rows that may bear on its invoices (a superset, as
        stored), customer by customer in id order."""
        ...

    def price_catalogs_of(self, event_ids: Sequence[str]) -> list[tuple[str, str | None]]:
        """(catalog, overrides as canonical JSON) that priced the current costs of these
        events, each once, in order."""
        ...

    def issued_documents(self) -> list[IssuedDocument]:
        """Every invoice once finalized and every credit note, as stored (not decoded)."""
        ...

    def document_chain(self) -> list[ChainEntry]:
        """The chain of finalized documents, in order."""
        ...

    def integrity_problems(self) -> list[str]:
        """What the database's own integrity check finds; none when the file is sound."""

    def rollup_mismatches(self) -> list[str]:
        """Where the daily rollups differ from the events they sum, each named; none when
        they agree (`store/rollups.py`)."""


class CostRevisions(Protocol):
    """Re-pricing steps after ingest, keeping every cost it replaces (`store/costs.py`)."""

    def billed_invoices(self) -> list[BilledInvoice]:
        """Each finalized or paid invoice: its customer, period and as-of time."""
        ...

    def count_steps_to_recost(self, selection: RecostSelection) -> int:
        """How many steps a re-pricing with this selection examines."""
        ...

    def recost_batch(
        self,
        selection: RecostSelection,
        after_seq: int,
        revise: Callable[[list[CostedStep]], list[CostRevision]],
        catalog: PriceCatalog,
        clock: Callable[[], int],
    ) -> RecostBatch:
        """Re-price the next steps of the selection after `after_seq`, in one transaction.

        `revise` runs under the write lock and returns the new costs of the steps whose
        cost changes; each replaced cost is kept, with the time it stopped holding (now,
        from `clock`), and questions asked as of an earlier time keep getting it.
        """
        ...


class Store(
    RecordStore,
    SpanStore,
    TaskReads,
    UsageAggregates,
    AdviceReads,
    BillingStore,
    CreditStore,
    ReservationStore,
    ContractStore,
    OutcomeStore,
    AccessStore,
    AuditStore,
    CostRevisions,
    Protocol,
):
    """Every role: what a backend implements and `open_store` returns."""


ROLES: tuple[type, ...] = (
    RecordStore,
    SpanStore,
    TaskReads,
    UsageAggregates,
    AdviceReads,
    BillingStore,
    CreditStore,
    ReservationStore,
    ContractStore,
    OutcomeStore,
    AccessStore,
    AuditStore,
    CostRevisions,
)
"""The role protocols, in the order drawn above."""


# -- roles used together --------------------------------------------------------------------
#
# Python has no intersection types: a use case that needs several roles names one of these.


class VerifyingStore(OutcomeStore, BillingStore, ContractStore, Protocol):
    """Outcomes with the plans (and the outcome contracts they name) that say how each is
    verified."""


class IngestStore(RecordStore, VerifyingStore, Protocol):
    """Writing records, with the outcome lifecycle checked under the write lock."""


class RatingStore(RecordStore, UsageAggregates, VerifyingStore, Protocol):
    """What rating a period reads: a stable as-of time, the usage aggregates, the plans and
    subscriptions, and the verdicts on outcomes (economics re-rates, so it reads the same)."""


class AdvisingStore(RecordStore, AdviceReads, VerifyingStore, Protocol):
    """Budget advice reads: a stable as-of time, the tasks and their outcomes, and the plans
    and subscriptions that price and verify each outcome."""


class IntegrityStore(TaskReads, VerifyingStore, Protocol):
    """Task activity beside the outcomes and verdicts claimed for it."""


class SpanIngestStore(IngestStore, SpanStore, Protocol):
    """OTLP spans judged and written with the records they make."""


class AttestationStore(IngestStore, AccessStore, Protocol):
    """Signed verdicts: the customer's secrets, then an outcome-checked write."""


class VerifiedBillingStore(BillingStore, CreditStore, ContractStore, AuditStore, Protocol):
    """Invoices with the rows they are computed from: finalizing seals an invoice with the
    digest of its rows, and verifying re-derives finalized documents from them."""
