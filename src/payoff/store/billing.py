"""The billing side of the SQL store: plans, subscriptions, rating aggregates, invoices and
credit notes.

Rating aggregates are computed in SQL as sums by (customer, day of the period), so that one
scan answers every customer, and a subscription window (which starts and ends on day
boundaries) is a sum of its days. The core never sees event rows.

Invoices and credit notes are stored as their canonical JSON (`Invoice.to_json()`,
`CreditNote.to_json()`) and read back through the same codec, which re-checks their totals.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Engine,
    Integer,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union,
    update,
)

from payoff.core.canonical import DocumentError, canonical_json, text_digest
from payoff.core.errors import Conflict, StoreError
from payoff.core.periods import US_PER_DAY, iso_from_us
from payoff.core.statuses import BILLED_STATUSES, OPEN
from payoff.core.token_classes import (
    CLASS_PARTS,
    TOKEN_CLASSES,
    VISIBLE_PART,
    class_columns,
    hidden_tokens,
    signed_tokens,
    tokens_over_budget,
)
from payoff.store import rollups
from payoff.store import schema as s
from payoff.store.costs import costs_replaced_between
from payoff.store.credits import CreditWrite, append_credits, wallet_entries
from payoff.store.exact_sums import joined
from payoff.store.in_lists import chunks
from payoff.store.task_dates import task_date_us, within

if TYPE_CHECKING:  # loaded when a document is read or written: not on every command's path
    from payoff.core.credit_notes import CreditNote
    from payoff.core.invoicing import Invoice

MAX_INVOICES_LISTED = 10_000
NUMBER_DIGITS = 6
"""Invoice and credit note numbers end in a sequence of at least this many digits."""
MAX_CUSTOMERS_LISTED = 10_000


class PlanConflict(Conflict, StoreError):
    """A plan (id, version) was applied before with a different body."""


@dataclass(frozen=True)
class StoredPlan:
    id: str
    version: int
    currency: str
    body: dict[str, Any]
    digest: str


@dataclass(frozen=True)
class Customer:
    """A billed account as registered, with what an invoice prints of it."""

    id: str
    name: str | None
    created_at_us: int
    address: str | None = None
    email: str | None = None
    tax_id: str | None = None


_CUSTOMER_COLUMNS = (
    s.customers.c.id,
    s.customers.c.name,
    s.customers.c.created_at_us,
    s.customers.c.address,
    s.customers.c.email,
    s.customers.c.tax_id,
)
"""In `Customer`'s field order."""


@dataclass(frozen=True)
class Subscription:
    customer: str
    plan_id: str
    plan_version: int
    starts_at_us: int
    ends_at_us: int | None


US_PER_HOUR = 3_600_000_000
TOKEN_COLUMNS = (
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
    "reasoning_tokens",
)  # fmt: skip


class HourUsage(NamedTuple):
    customer: str
    hour: int
    """Hours from the window's start."""
    tokens: tuple[int, ...]
    """Tokens of each of TOKEN_CLASSES."""


@dataclass(frozen=True)
class StoredSeatCount:
    customer: str
    effective_at_us: int
    seats: int
    recorded_at_us: int


@dataclass(frozen=True)
class StoredInvoice:
    id: str
    customer: str
    period: str
    status: str
    currency: str
    total: Decimal
    as_of_us: int
    invoice: Invoice
    """The document, read back through its codec, with the stored status."""
    finalized_at_us: int | None
    number: str | None = None
    """Assigned when the invoice is finalized; drafts have none, a voided one keeps it."""
    issuer: str | None = None
    """The issuer's details as JSON, as configured when the invoice was finalized."""


@dataclass(frozen=True)
class Finalizing:
    """What finalizing a draft writes beside it, as the service chose it."""

    draft_digest: str
    """The digest of the draft document the service checked: only that draft is finalized."""
    number_prefix: str
    """The invoice's number is the next after it; a credit note's the next after
    `note_prefix`."""
    note_prefix: str
    issuer: str | None
    """The issuer's details as JSON, kept with the invoice."""
    at_us: int
    records_digest: str | None = None
    """The digest of the ledger rows the invoice was computed from (`core.ledger_rows`)."""


@dataclass(frozen=True)
class StoredCreditNote:
    note: CreditNote
    number: str | None
    """None on notes issued before notes were numbered."""
    created_at_us: int


class DayUsage(NamedTuple):
    """Usage of one customer on one day of a period (day 0 is the period's first)."""

    customer: str
    day: int
    input: int
    cache_read: int
    cache_write: int
    output: int
    cost_nanousd: int
    unpriced_steps: int


class KeyedUsage(NamedTuple):
    """Usage of one customer on one day of a period, for one task type, provider, model (None
    where the steps had none) and batch or not: what filtered charges count."""

    customer: str
    day: int
    task_type: str | None
    provider: str | None
    model: str | None
    input: int
    cache_read: int
    cache_write: int
    output: int
    cost_nanousd: int
    unpriced_steps: int
    batch: bool


class DayTasks(NamedTuple):
    customer: str
    day: int
    type: str | None
    status: str
    tasks: int


class DayOutcome(NamedTuple):
    customer: str
    day: int
    type: str
    value: Decimal


class DayBudget(NamedTuple):
    """Hidden tokens over a per-task budget, summed over the tasks started on a day."""

    customer: str
    day: int
    absorbed: int


def any_row(engine: Engine, queries: Sequence[Any]) -> bool:
    """Whether any of the queries finds a row (each stops at its first)."""
    with engine.connect() as conn:
        return any(conn.execute(query.limit(1)).first() is not None for query in queries)


def _tasks_dated_within(
    start_us: int, end_us: int, as_of_us: int, customer: str | None
) -> CompoundSelect[tuple[str]]:
    """The ids of every task that may be dated in [start_us, end_us) as of `as_of_us` (a
    superset): a task is dated by its final status's time or else by its start, so it started
    in the window or has a final status known then that occurred in it. Both read by index
    (`ix_tasks_started`, `ix_task_updates_occurred`), not every task of the ledger."""
    u, t = s.task_updates.c, s.tasks.c
    started = select(t.id).where(within(t.started_at_us, start_us, end_us))
    ended = select(u.task).where(
        within(u.occurred_at_us, start_us, end_us), u.received_at_us <= as_of_us, u.status != OPEN
    )
    if customer is not None:
        started = started.where(t.customer == customer)
        ended = ended.where(u.customer == customer)
    return union(started, ended)


def _day(column: Any, start_us: int) -> Any:
    # Floor division: SQLAlchemy renders `/` on integers as true (float) division.
    return ((column - start_us) // US_PER_DAY).label("day")


def next_number(conn: Connection, column: Any, prefix: str) -> str:
    """The next number after the highest `prefix`NNNNNN in `column`. Call it inside the
    write transaction that stores the number: the unique index refuses any repeat.
    `prefix` holds no LIKE wildcards (the issuer's settings are checked for that)."""
    sequence = cast(func.substr(column, len(prefix) + 1), Integer)
    highest = conn.execute(
        select(func.max(sequence)).where(column.like(prefix + "%"))
    ).scalar_one_or_none()
    return f"{prefix}{(highest or 0) + 1:0{NUMBER_DIGITS}d}"


class BillingQueries:
    engine: Engine
    _write_transaction: Callable[[], AbstractContextManager[Connection]]
    """SqlStore's: a transaction that takes the write lock as it begins (so numbers are
    chosen under it, and a read before a write cannot go stale)."""

    # -- plans -------------------------------------------------------------------------

    def put_plan(
        self,
        plan_id: str,
        version: int,
        currency: str,
        body: dict[str, Any],
        digest: str,
        now_us: int,
    ) -> bool:
        """Store a plan version; False when the same body was stored before (a no-op)."""
        p = s.plans.c
        with self._write_transaction() as conn:
            found = conn.execute(
                select(p.digest).where(and_(p.id == plan_id, p.version == version))
            ).scalar_one_or_none()
            if found == digest:
                return False
            if found is not None:
                raise PlanConflict(
                    f"plan {plan_id}@{version} exists with a different body; plans are "
                    f"immutable: apply it as version {version + 1}"
                )
            conn.execute(
                s.plans.insert().values(
                    id=plan_id,
                    version=version,
                    currency=currency,
                    body=canonical_json(body),
                    digest=digest,
                    created_at_us=now_us,
                )
            )
        return True

    def get_plan(self, plan_id: str, version: int | None = None) -> StoredPlan | None:
        p = s.plans.c
        query = select(s.plans).where(p.id == plan_id)
        query = (
            query.where(p.version == version)
            if version is not None
            else query.order_by(p.version.desc()).limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return StoredPlan(row.id, row.version, row.currency, json.loads(row.body), row.digest)

    def list_plans(self) -> list[StoredPlan]:
        p = s.plans.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(s.plans).order_by(p.id, p.version)).all()
        return [StoredPlan(r.id, r.version, r.currency, json.loads(r.body), r.digest) for r in rows]

    def known_types(self) -> tuple[set[str], set[str]]:
        """The task types and outcome types the ledger has seen."""
        with self.engine.connect() as conn:
            tasks = set(conn.scalars(select(s.tasks.c.type).distinct()))
            outcomes = set(conn.scalars(select(s.outcomes.c.type).distinct()))
        tasks.discard(None)
        return tasks, outcomes

    # -- customers and subscriptions -----------------------------------------------------

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
        """Create a customer or update the details given (None keeps one); True when new."""
        c = s.customers.c
        details = {"name": name, "address": address, "email": email, "tax_id": tax_id}
        given = {key: value for key, value in details.items() if value is not None}
        with self._write_transaction() as conn:
            exists = conn.execute(select(c.id).where(c.id == customer)).first() is not None
            if exists:
                if given:
                    conn.execute(update(s.customers).where(c.id == customer).values(**given))
                return False
            conn.execute(s.customers.insert().values(id=customer, created_at_us=now_us, **given))
            return True

    def get_customer(self, customer: str) -> Customer | None:
        """A registered customer, or None."""
        query = select(*_CUSTOMER_COLUMNS).where(s.customers.c.id == customer)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else Customer(*row)

    def list_customers(
        self, *, limit: int = MAX_CUSTOMERS_LISTED, offset: int = 0
    ) -> list[Customer]:
        """Registered customers by id, one page of them."""
        query = select(*_CUSTOMER_COLUMNS).order_by(s.customers.c.id).limit(limit).offset(offset)
        with self.engine.connect() as conn:
            return [Customer(*row) for row in conn.execute(query)]

    def subscribe(
        self, customer: str, plan_id: str, version: int, starts_at_us: int, now_us: int
    ) -> None:
        """Put a customer on a plan version from a time; the open subscription ends then."""
        sub = s.subscriptions.c
        with self._write_transaction() as conn:
            later = conn.execute(
                select(func.max(sub.starts_at_us)).where(sub.customer == customer)
            ).scalar_one_or_none()
            if later is not None and later >= starts_at_us:
                raise StoreError(
                    f"customer {customer} already has a subscription starting at or after that "
                    "date; subscriptions only move forward"
                )
            conn.execute(
                update(s.subscriptions)
                .where(
                    and_(
                        sub.customer == customer,
                        or_(sub.ends_at_us.is_(None), sub.ends_at_us > starts_at_us),
                    )
                )
                .values(ends_at_us=starts_at_us)
            )
            conn.execute(
                s.subscriptions.insert().values(
                    customer=customer,
                    plan_id=plan_id,
                    plan_version=version,
                    starts_at_us=starts_at_us,
                    ends_at_us=None,
                    created_at_us=now_us,
                )
            )
            if (
                conn.execute(select(s.customers.c.id).where(s.customers.c.id == customer)).first()
                is None
            ):
                conn.execute(s.customers.insert().values(id=customer, created_at_us=now_us))

    def end_subscription(self, customer: str, ends_at_us: int, now_us: int) -> bool:
        """End the subscription running at `ends_at_us`; False when none is."""
        sub = s.subscriptions.c
        running = and_(
            sub.customer == customer,
            sub.starts_at_us < ends_at_us,
            or_(sub.ends_at_us.is_(None), sub.ends_at_us > ends_at_us),
        )
        with self._write_transaction() as conn:
            changed = conn.execute(
                update(s.subscriptions).where(running).values(ends_at_us=ends_at_us)
            ).rowcount
        return bool(changed)

    def subscriptions(
        self, start_us: int, end_us: int, customer: str | None = None
    ) -> list[Subscription]:
        """Subscriptions active at some time in [start_us, end_us), by customer and start."""
        sub = s.subscriptions.c
        query = (
            select(sub.customer, sub.plan_id, sub.plan_version, sub.starts_at_us, sub.ends_at_us)
            .where(
                and_(
                    sub.starts_at_us < end_us,
                    or_(sub.ends_at_us.is_(None), sub.ends_at_us > start_us),
                )
            )
            .order_by(sub.customer, sub.starts_at_us)
        )
        if customer is not None:
            query = query.where(sub.customer == customer)
        with self.engine.connect() as conn:
            return [Subscription(*row) for row in conn.execute(query)]

    def set_seats(self, customer: str, effective_at_us: int, seats: int, now_us: int) -> bool:
        """Record a seat count from the start of a day; False (nothing recorded) when the
        count last recorded for that day is already this one."""
        c = s.seat_counts.c
        with self._write_transaction() as conn:
            last = conn.execute(
                select(c.seats)
                .where(and_(c.customer == customer, c.effective_at_us == effective_at_us))
                .order_by(c.seq.desc())
                .limit(1)
            ).scalar_one_or_none()
            if last == seats:
                return False
            conn.execute(
                s.seat_counts.insert().values(
                    customer=customer,
                    effective_at_us=effective_at_us,
                    seats=seats,
                    recorded_at_us=now_us,
                )
            )
            return True

    def seat_counts(self, customer: str | None, as_of_us: int) -> list[StoredSeatCount]:
        """Seat counts recorded by `as_of_us`, by customer, in the order recorded."""
        c = s.seat_counts.c
        query = (
            select(c.customer, c.effective_at_us, c.seats, c.recorded_at_us)
            .where(c.recorded_at_us <= as_of_us)
            .order_by(c.customer, c.seq)
        )
        if customer is not None:
            query = query.where(c.customer == customer)
        with self.engine.connect() as conn:
            return [StoredSeatCount(*row) for row in conn.execute(query)]

    # -- rating aggregates ---------------------------------------------------------------

    def usage_by_day(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[DayUsage]:
        """Per customer and day of the window: tokens by class, cost, unpriced steps, as the
        events said at `as_of_us` (read from the rollups, `store.rollups`)."""
        first_day, end_day = rollups.days_of(start_us, end_us)
        with rollups.reading(self.engine) as conn:
            rows, params = rollups.known_rows(conn, rollups.USAGE, as_of_us)
            c = rows.c
            query = (
                select(c.customer, c.day, *rollups.summed(rows))
                .where(c.day >= first_day, c.day < end_day)
                .group_by(c.customer, c.day)
                .having(func.sum(c.steps) != 0)
                .order_by(c.customer, c.day)
            )
            if customer is not None:
                query = query.where(c.customer == customer)
            found = conn.execute(query, params).all()
        usage = []
        for row in found:
            values = rollups.fold(row, 2)
            classes = [sum(values[part] for part in CLASS_PARTS[name]) for name in TOKEN_CLASSES]
            usage.append(
                DayUsage._make(
                    (row[0], row[1] - first_day, *classes, values["cost"], values["unpriced"])
                )
            )
        return usage

    def usage_by_key(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[KeyedUsage]:
        """`usage_by_day` kept apart by task type, provider and model, the keys the rollup
        holds besides (read from the rollups, as of `as_of_us`, the same way)."""
        first_day, end_day = rollups.days_of(start_us, end_us)
        with rollups.reading(self.engine) as conn:
            rows, params = rollups.known_rows(conn, rollups.USAGE, as_of_us)
            c = rows.c
            keys = (c.customer, c.day, c.task_type, c.provider, c.model, c.batch)
            query = (
                select(*keys, *rollups.summed(rows))
                .where(c.day >= first_day, c.day < end_day)
                .group_by(*keys)
                .having(func.sum(c.steps) != 0)
                .order_by(*keys)
            )
            if customer is not None:
                query = query.where(c.customer == customer)
            found = conn.execute(query, params).all()
        usage = []
        for row in found:
            values = rollups.fold(row, len(keys))
            classes = [sum(values[part] for part in CLASS_PARTS[name]) for name in TOKEN_CLASSES]
            named = [rollups.key_value(value) for value in row[2:5]]
            sums = (values["cost"], values["unpriced"], bool(row[5]))
            usage.append(KeyedUsage._make([row[0], row[1] - first_day, *named, *classes, *sums]))
        return usage

    def usage_by_hour(
        self, start_us: int, end_us: int, as_of_us: int, customers: Sequence[str]
    ) -> list[HourUsage]:
        """Per customer and hour of the window (from its start): tokens by class, of the
        events received by `as_of_us`. Read from the customers' events, not the daily
        rollups (an hour is finer than a rollup's day): its cost grows with their events,
        so rating asks it only for customers whose plan limits usage by window."""
        e = s.events.c
        columns = [e[name] for name in TOKEN_COLUMNS]
        sums: dict[tuple[str, int], list[int]] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(customers))):
                query = select(e.customer, e.occurred_at_us, *columns).where(
                    e.customer.in_(chunk),
                    e.occurred_at_us >= start_us,
                    e.occurred_at_us < end_us,
                    e.received_at_us <= as_of_us,
                )
                for customer, occurred_at_us, *counts in conn.execute(query):
                    key = (customer, (occurred_at_us - start_us) // US_PER_HOUR)
                    found = sums.setdefault(key, [0] * len(TOKEN_COLUMNS))
                    for index, count in enumerate(counts):
                        found[index] += count
        usage = []
        for (customer, hour), counted in sorted(sums.items()):
            by_column = dict(zip(TOKEN_COLUMNS, counted, strict=True))
            classes = [signed_tokens(class_columns(name), by_column) for name in TOKEN_CLASSES]
            usage.append(HourUsage(customer, hour, tuple(classes)))
        return usage

    def hidden_over_budget(
        self,
        start_us: int,
        end_us: int,
        as_of_us: int,
        classes: Sequence[str],
        budget: int,
        customer: str | None = None,
    ) -> list[DayBudget]:
        """Per customer and day: hidden tokens of the counted classes above `budget`, per task.

        A task's hidden tokens in the window are its counted tokens less its visible ones
        (`core.token_classes.hidden_tokens`); it belongs to the day of its first step in the
        window. Each task's sums come from the task rollup; the budget is judged here.
        """
        first_day, end_day = rollups.days_of(start_us, end_us)
        with rollups.reading(self.engine) as conn:
            rows, params = rollups.known_rows(conn, rollups.TASK_USAGE, as_of_us)
            c = rows.c
            visible = [
                func.sum(case((c.visible, c[column]), else_=0))
                for column in s.ROLLUP_PART_COLUMNS[VISIBLE_PART]
            ]
            # Only the parts the counted classes hold: each summed per task, joined here.
            counted_parts = [part for name in classes for part in CLASS_PARTS[name]]
            counted = [
                func.sum(c[column])
                for part in counted_parts
                for column in s.ROLLUP_PART_COLUMNS[part]
            ]
            query = (
                select(c.customer, func.min(c.day), *visible, *counted)
                .where(c.day >= first_day, c.day < end_day, c.task != rollups.NO_KEY)
                .group_by(c.customer, c.task)
                .having(func.sum(c.steps) != 0)
            )
            if customer is not None:
                query = query.where(c.customer == customer)
            absorbed: dict[tuple[str, int], int] = defaultdict(int)
            width = len(visible)  # every sum has as many parts (a token count's)
            assert len(counted) % width == 0
            # Row by row as the cursor yields them: a month holds a row per task.
            for row in conn.execute(query, params):
                sums = [joined(row[at : at + width]) for at in range(2, len(row), width)]
                hidden = hidden_tokens(classes, sum(sums[1:]), sums[0])
                absorbed[(row[0], row[1] - first_day)] += tokens_over_budget(hidden, budget)
        return [
            DayBudget(customer, day, tokens) for (customer, day), tokens in sorted(absorbed.items())
        ]

    def tasks_by_day(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[DayTasks]:
        """Tasks by the day they are dated by (`core.statuses.task_date_us`): the status known
        as of `as_of_us` that is latest in time (at one instant a final status beats OPEN),
        its time when final, else the task's start."""
        u, t = s.task_updates.c, s.tasks.c
        known = and_(u.received_at_us <= as_of_us)
        # Once (a CTE), for the statuses and the tasks both.
        dated = _tasks_dated_within(start_us, end_us, as_of_us, customer).cte("dated")
        candidates = select(dated.c[0])
        ranked = select(
            u.task,
            u.status,
            u.occurred_at_us,
            func.row_number()
            .over(
                partition_by=u.task,
                order_by=(u.occurred_at_us.desc(), case((u.status == OPEN, 1), else_=0)),
            )
            .label("rank"),
        ).where(known, u.task.in_(candidates))
        if customer is not None:
            ranked = ranked.where(u.customer == customer)
        latest = ranked.subquery()
        status = func.coalesce(latest.c.status, OPEN)
        when = task_date_us(latest.c.status, latest.c.occurred_at_us, t.started_at_us)
        day = _day(when, start_us)
        query = (
            select(t.customer, day, t.type, status, func.count())
            .select_from(s.tasks.outerjoin(latest, and_(latest.c.task == t.id, latest.c.rank == 1)))
            .where(within(when, start_us, end_us), t.created_at_us <= as_of_us)
            .where(t.id.in_(candidates))
            .group_by(t.customer, day, t.type, status)
        )
        if customer is not None:
            query = query.where(t.customer == customer)
        with self.engine.connect() as conn:
            return [DayTasks(*row) for row in conn.execute(query)]

    def task_updates_received_between(self, customer: str, after_us: int, until_us: int) -> bool:
        """Whether a task status of the customer arrived in (after, until], whatever its time:
        a task's end may move it between periods."""
        u = s.task_updates.c
        query = select(literal(1)).where(
            u.customer == customer, u.received_at_us > after_us, u.received_at_us <= until_us
        )
        return any_row(self.engine, [query])

    def received_between(
        self, customer: str, start_us: int, end_us: int, after_us: int, until_us: int
    ) -> bool:
        """Whether any record of the window arrived in (after_us, until_us], or a step's
        cost was re-priced then: late usage."""
        queries = [
            select(literal(1)).where(
                t.c.customer == customer,
                t.c.occurred_at_us >= start_us,
                t.c.occurred_at_us < end_us,
                t.c.received_at_us > after_us,
                t.c.received_at_us <= until_us,
            )
            for t in (s.events, s.outcomes, s.task_updates)
        ]
        queries.append(costs_replaced_between(customer, start_us, end_us, after_us, until_us))
        return any_row(self.engine, queries)

    # -- invoices ------------------------------------------------------------------------

    def save_drafts(self, drafts: Sequence[Invoice], as_of_us: int, now_us: int) -> None:
        """Store draft invoices in one transaction, each replacing its period's draft."""
        i = s.invoices.c
        with self._write_transaction() as conn:
            for draft in drafts:
                customer, period = draft.customer, draft.period
                same_period = and_(i.customer == customer, i.period == period)
                closed = conn.execute(
                    select(i.id).where(same_period, i.status.in_(BILLED_STATUSES))
                ).first()
                if closed is not None:
                    raise StoreError(f"invoice {closed.id} for {customer} {period} is finalized")
                conn.execute(s.invoices.delete().where(same_period, i.status == "draft"))
                conn.execute(
                    s.invoices.insert().values(
                        id=draft.id,
                        customer=customer,
                        period=period,
                        status="draft",
                        currency=draft.currency,
                        total=format(draft.totals.total, "f"),  # plain, as documents have it
                        as_of_us=as_of_us,
                        document=draft.to_json(),
                        created_at_us=now_us,
                    )
                )

    def get_invoice(self, invoice_id: str) -> StoredInvoice | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.invoices).where(s.invoices.c.id == invoice_id)).first()
            return None if row is None else _checked(conn, [_invoice(row)])[0]

    def list_invoices(
        self,
        customer: str | None = None,
        period: str | None = None,
        status: str | None = None,
        *,
        statuses: Sequence[str] = (),
        since_period: str | None = None,
        limit: int | None = MAX_INVOICES_LISTED,
        offset: int = 0,
    ) -> list[StoredInvoice]:
        """Invoices by period, customer and creation; `limit=None` for all (internal use)."""
        i = s.invoices.c
        query = select(s.invoices).order_by(i.period, i.customer, i.created_at_us, i.id)
        if limit is not None:
            query = query.limit(limit).offset(offset)
        for column, value in ((i.customer, customer), (i.period, period), (i.status, status)):
            if value is not None:
                query = query.where(column == value)
        if statuses:
            query = query.where(i.status.in_(statuses))
        if since_period is not None:
            query = query.where(i.period >= since_period)
        with self.engine.connect() as conn:
            return _checked(conn, [_invoice(row) for row in conn.execute(query)])

    def set_invoice_status(
        self,
        invoice_id: str,
        expected: str,
        new: str,
        now_us: int,
        credits: CreditWrite | None = None,
    ) -> bool:
        """Move an invoice from `expected` to `new` status; False if it was not `expected`.
        `credits` appends to the customer's wallet in the same transaction."""
        i = s.invoices.c
        values: dict[str, Any] = {"status": new}
        values["finalized_at_us" if new == "finalized" else "closed_at_us"] = now_us
        with self._write_transaction() as conn:
            changed = conn.execute(
                update(s.invoices)
                .where(and_(i.id == invoice_id, i.status == expected))
                .values(**values)
            ).rowcount
            if changed and credits is not None:
                _append_wallet(conn, invoice_id, credits, now_us)
        return bool(changed)

    def finalize_invoice(
        self,
        invoice_id: str,
        finalizing: Finalizing,
        before_write: Callable[[], Sequence[CreditNote]] | None = None,
        credits: CreditWrite | None = None,
    ) -> str | None:
        """Finalize a draft and issue the credit notes `before_write` returns, in one
        transaction under the write lock: each is numbered, sealed (`core.chain`) and
        chained after the document finalized before it; `credits` appends to the
        customer's wallet (the draw-down) in the same transaction. None when the invoice
        is no longer the draft the service checked (its digest differs, or it is not a draft).

        `before_write` runs first, under the lock: what it reads (the other invoices the
        draft depends on, those its notes credit) cannot change before this commits.
        """
        from payoff.core.chain import Seal
        from payoff.core.invoicing import Invoice

        i = s.invoices.c
        with self._write_transaction() as conn:
            notes = before_write() if before_write is not None else ()
            found = conn.execute(select(i.status, i.document).where(i.id == invoice_id)).first()
            if (
                found is None
                or found.status != "draft"
                or text_digest(found.document) != finalizing.draft_digest
            ):
                return None
            number = next_number(conn, i.number, finalizing.number_prefix)
            issued_at = iso_from_us(finalizing.at_us)
            seal = Seal(
                number,
                issued_at,
                _chain_head(conn),
                finalizing.records_digest,
                None if finalizing.issuer is None else text_digest(finalizing.issuer),
            )
            document = Invoice.from_json(found.document, "draft").sealed(seal).to_json()
            conn.execute(
                update(s.invoices)
                .where(and_(i.id == invoice_id, i.status == "draft"))
                .values(
                    status="finalized",
                    finalized_at_us=finalizing.at_us,
                    number=number,
                    issuer=finalizing.issuer,
                    document=document,
                )
            )
            _chain(conn, "invoice", invoice_id, document)
            for note in notes:
                self._issue_credit_note(conn, note, finalizing)
            if credits is not None:
                _append_wallet(conn, invoice_id, credits, finalizing.at_us)
        return number

    def _issue_credit_note(
        self, conn: Connection, note: CreditNote, finalizing: Finalizing
    ) -> None:
        from payoff.core.chain import Seal

        c = s.credit_notes.c
        if conn.execute(select(c.id).where(c.id == note.id)).first() is not None:
            raise StoreError(f"credit note {note.id} exists already")
        number = next_number(conn, c.number, finalizing.note_prefix)
        seal = Seal(number, iso_from_us(finalizing.at_us), _chain_head(conn))
        document = note.sealed(seal).to_json()
        conn.execute(
            s.credit_notes.insert().values(
                id=note.id,
                invoice=note.invoice,
                customer=note.customer,
                document=document,
                created_at_us=finalizing.at_us,
                number=number,
            )
        )
        _chain(conn, "credit_note", note.id, document)

    # -- credit notes --------------------------------------------------------------------

    def get_credit_note(self, note_id: str) -> StoredCreditNote | None:
        c = s.credit_notes.c
        query = select(c.document, c.number, c.created_at_us).where(c.id == note_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        from payoff.core.credit_notes import CreditNote

        return StoredCreditNote(CreditNote.from_json(row.document), row.number, row.created_at_us)

    def credit_notes(
        self, invoice: str | None = None, customer: str | None = None
    ) -> list[CreditNote]:
        """Credit notes against an invoice or of a customer, in the order they were issued."""
        c = s.credit_notes.c
        query = select(c.document).order_by(c.created_at_us, c.id)
        if invoice is not None:
            query = query.where(c.invoice == invoice)
        if customer is not None:
            query = query.where(c.customer == customer)
        with self.engine.connect() as conn:
            from payoff.core.credit_notes import CreditNote

            return [CreditNote.from_json(text) for text in conn.scalars(query)]


def _append_wallet(conn: Connection, invoice_id: str, credits: CreditWrite, now_us: int) -> None:
    customer = conn.execute(
        select(s.invoices.c.customer).where(s.invoices.c.id == invoice_id)
    ).scalar_one()
    append_credits(conn, credits(wallet_entries(conn, customer)), now_us)


def _chain_head(conn: Connection) -> str:
    """The digest of the last document chained, or GENESIS: what the next one names.
    Read inside the write transaction that chains the next one."""
    from payoff.core.chain import GENESIS

    c = s.document_chain.c
    head = conn.execute(select(c.digest).order_by(c.seq.desc()).limit(1)).scalar_one_or_none()
    return GENESIS if head is None else str(head)


def _chain(conn: Connection, kind: str, document_id: str, text: str) -> None:
    """Chain a document just finalized: the next place, and the digest of its text."""
    c = s.document_chain.c
    last = conn.execute(select(func.max(c.seq))).scalar_one_or_none() or 0
    conn.execute(
        s.document_chain.insert().values(
            seq=last + 1, kind=kind, document=document_id, digest=text_digest(text)
        )
    )


def _plan_refs(invoice: Invoice) -> list[tuple[str, str]]:
    """(plan "ID@VERSION", digest) of each window an invoice rated; its plan when it has none."""
    if invoice.windows:
        return [(window.plan, window.plan_digest) for window in invoice.windows]
    return [(invoice.plan, invoice.plan_digest)]


def _checked(conn: Connection, invoices: list[StoredInvoice]) -> list[StoredInvoice]:
    """The invoices, once every plan digest they record is the stored plan version's.

    Decoding already re-checked each document's totals against its lines; this is the other
    half of the pair: the plan versions it was rated with are still the ones stored under
    their names (a plan is immutable, so a difference means the ledger was edited).
    """
    wanted = {ref for stored in invoices for ref, _ in _plan_refs(stored.invoice)}
    p = s.plans.c
    stored_digests: dict[str, str] = {}
    for chunk in chunks(sorted({ref.rpartition("@")[0] for ref in wanted})):
        for row in conn.execute(select(p.id, p.version, p.digest).where(p.id.in_(chunk))):
            stored_digests[f"{row.id}@{row.version}"] = row.digest
    for stored in invoices:
        for ref, recorded in _plan_refs(stored.invoice):
            if stored_digests.get(ref) != recorded:
                raise DocumentError(
                    f"invoice {stored.id}: plan {ref} is not the version it was rated with "
                    f"(recorded digest {recorded}, stored {stored_digests.get(ref, 'none')})"
                )
    return invoices


def _invoice(row: Any) -> StoredInvoice:
    from payoff.core.invoicing import Invoice

    return StoredInvoice(
        row.id,
        row.customer,
        row.period,
        row.status,
        row.currency,
        Decimal(row.total),
        row.as_of_us,
        Invoice.from_json(row.document, row.status),
        row.finalized_at_us,
        row.number,
        row.issuer,
    )
