"""What verifying reads: rows as they are stored, finalized documents as text, the chain.

Nothing here decodes or checks a document: a document edited in the database must reach
`payoff verify` as it is, to be named there, not refused on the way.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import groupby
from operator import attrgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, or_, select

from payoff.core.chain import ChainEntry
from payoff.core.derivation import named
from payoff.core.ledger_rows import (
    AttestationRow,
    ContractRow,
    DecisionRow,
    EventRow,
    InvoiceRow,
    LedgerRows,
    OutcomeRow,
    PlanRow,
    SeatCountRow,
    SignalRow,
    SubscriptionRow,
    SupersededCost,
    TaskRow,
    TaskUpdateRow,
)
from payoff.store import schema as s
from payoff.store.in_lists import chunks

FETCH_ROWS = 10_000
"""Event rows fetched at a time while streaming them."""


class RowsWanted(NamedTuple):
    """The rows that may bear on some customers' invoices of the same periods: a superset
    that `core.derivation.select_rows` narrows to exactly those each invoice reads."""

    customers: tuple[str, ...]
    start_us: int
    """The start of the earliest period the invoices rated."""
    end_us: int
    """The end of the invoices' own period."""
    as_of_us: int
    """The latest as-of time of the invoices."""
    claimed_from_us: int
    """How far before `start_us` claims may have been made and be verified in a period."""
    plans: tuple[tuple[str, int], ...] = ()
    """(id, version) of plans wanted beside those the subscriptions name."""
    invoices: tuple[str, ...] = ()
    """Finalized invoices wanted (those late lines were computed against)."""


class IssuedDocument(NamedTuple):
    """A finalized invoice (finalized, paid or void) or a credit note, as stored."""

    kind: str
    """"invoice" or "credit_note"."""
    id: str
    customer: str
    period: str | None
    """An invoice's period; a note's is in its document."""
    status: str
    """An invoice's status; "issued" for a note."""
    text: str
    number: str | None
    total: str | None
    """The invoice's `total` column (beside the document's own)."""
    issued_at_us: int | None
    """When an invoice was finalized or a note issued."""
    issuer: str | None


def _columns(table: Any, row_type: type[Any]) -> list[Any]:
    return [table.c[name] for name in row_type._fields]


class AuditQueries:
    engine: Engine

    def ledger_rows(self, wanted: RowsWanted) -> Iterator[LedgerRows]:
        """Each wanted customer's rows that may bear on its invoices (see RowsWanted), as
        stored, customer by customer in id order.

        Every table but the events is read once for all the customers; the events are read
        in one pass ordered by customer, and one customer's are held at a time.
        """
        customers = sorted(set(wanted.customers))
        plans = self._plans(wanted)
        contracts = self._contracts(plans)
        invoices = self._invoice_rows(wanted.invoices)
        with self.engine.connect() as conn:
            others = _by_customer(conn, customers, wanted)
            events = _events_by_customer(conn, customers, wanted)
            for customer in customers:
                found = others[customer]
                yield LedgerRows(
                    plans=plans,
                    contracts=contracts,
                    subscriptions=tuple(found["subscriptions"]),
                    seat_counts=tuple(found["seat_counts"]),
                    invoices=invoices,
                    tasks=tuple(found["tasks"]),
                    task_updates=tuple(found["task_updates"]),
                    events=next(events) if found["has_events"] else (),
                    outcomes=tuple(found["outcomes"]),
                    attestations=tuple(found["attestations"]),
                    outcome_decisions=tuple(found["outcome_decisions"]),
                    signals=tuple(found["signals"]),
                    superseded_costs=tuple(found["superseded_costs"]),
                )

    def price_catalogs_of(self, event_ids: Sequence[str]) -> list[tuple[str, str | None]]:
        e, c = s.events.c, s.price_catalogs.c
        found: set[tuple[str, str | None]] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(event_ids))):
                query = (
                    select(c.catalog, c.overrides)
                    .distinct()
                    .join_from(s.events, s.price_catalogs, e.cost_catalog == c.id)
                    .where(e.id.in_(chunk))
                )
                found.update((row.catalog, row.overrides) for row in conn.execute(query))
        return sorted(found, key=lambda found: (found[0], found[1] or ""))

    def _plans(self, wanted: RowsWanted) -> tuple[PlanRow, ...]:
        """The plans the customers' subscriptions name, and those wanted."""
        sub, p = s.subscriptions.c, s.plans.c
        refs = set(wanted.plans)
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(wanted.customers))):
                named = select(sub.plan_id, sub.plan_version).where(
                    sub.customer.in_(chunk), sub.starts_at_us < wanted.end_us
                )
                refs |= {(row.plan_id, row.plan_version) for row in conn.execute(named)}
            plans = []
            for chunk in chunks(sorted({plan_id for plan_id, _ in refs})):
                query = select(p.id, p.version, p.currency, p.digest, p.body).where(p.id.in_(chunk))
                for row in conn.execute(query):
                    if (row.id, row.version) in refs:
                        plans.append(PlanRow(*row[:4], json.loads(row.body)))
        return tuple(plans)

    def _contracts(self, plans: Sequence[PlanRow]) -> tuple[ContractRow, ...]:
        """The outcome contracts the plans' charges name."""
        c = s.contracts.c
        refs = named(plans)
        found = []
        with self.engine.connect() as conn:
            for chunk in chunks(sorted({ref.rpartition("@")[0] for ref in refs})):
                query = select(c.id, c.version, c.digest, c.body).where(c.id.in_(chunk))
                for row in conn.execute(query):
                    if f"{row.id}@{row.version}" in refs:
                        found.append(ContractRow(*row[:3], json.loads(row.body)))
        return tuple(found)

    def _invoice_rows(self, ids: tuple[str, ...]) -> tuple[InvoiceRow, ...]:
        i = s.invoices.c
        found = []
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                for row in conn.execute(select(i.id, i.document).where(i.id.in_(chunk))):
                    found.append(InvoiceRow(row.id, json.loads(row.document)))
        return tuple(found)

    def issued_documents(self) -> list[IssuedDocument]:
        """Every invoice once finalized (finalized, paid or void) and every credit note, as
        stored, by id."""
        i, c = s.invoices.c, s.credit_notes.c
        invoices = select(
            i.id, i.customer, i.period, i.status, i.document, i.number, i.total,
            i.finalized_at_us, i.issuer,
        ).where(i.status != "draft").order_by(i.id)  # fmt: skip
        notes = select(c.id, c.customer, c.document, c.number, c.created_at_us).order_by(c.id)
        with self.engine.connect() as conn:
            found = [
                IssuedDocument("invoice", r.id, r.customer, r.period, r.status, r.document,
                               r.number, r.total, r.finalized_at_us, r.issuer)
                for r in conn.execute(invoices)
            ]  # fmt: skip
            found += [
                IssuedDocument("credit_note", r.id, r.customer, None, "issued", r.document,
                               r.number, None, r.created_at_us, None)
                for r in conn.execute(notes)
            ]  # fmt: skip
        return found

    def document_chain(self) -> list[ChainEntry]:
        """The chain of finalized documents, in order."""
        c = s.document_chain.c
        query = select(c.seq, c.kind, c.document, c.digest).order_by(c.seq)
        with self.engine.connect() as conn:
            return [ChainEntry(*row) for row in conn.execute(query)]


def _in_range(table: Any, customers: Sequence[str], wanted: RowsWanted) -> Any:
    """The customers' rows of a table dated in the range, received by the as-of time."""
    c = table.c
    return and_(
        c.customer.in_(customers),
        c.occurred_at_us >= wanted.start_us,
        c.occurred_at_us < wanted.end_us,
        c.received_at_us <= wanted.as_of_us,
    )


def _events_by_customer(
    conn: Connection, customers: list[str], wanted: RowsWanted
) -> Iterator[tuple[EventRow, ...]]:
    """The events of each customer that has any in the range, one customer at a time in
    customer order, each customer's in the order rows are read in (core.ledger_rows)."""
    e = s.events.c
    for chunk in chunks(customers):
        query = (
            select(*_columns(s.events, EventRow))
            .where(_in_range(s.events, chunk, wanted))
            .order_by(e.customer, e.occurred_at_us, e.id)
        )
        rows = (
            EventRow._make(row)
            for part in conn.execute(query).partitions(FETCH_ROWS)
            for row in part
        )
        for _, group in groupby(rows, key=attrgetter("customer")):
            yield tuple(group)


def _by_customer(
    conn: Connection, customers: list[str], wanted: RowsWanted
) -> dict[str, dict[str, Any]]:
    """Every table but the events, for all the customers, by customer; and whether each
    customer has events in the range."""
    found: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(list))
    e, sub = s.events.c, s.subscriptions.c
    for chunk in chunks(customers):
        with_events = select(e.customer).distinct().where(_in_range(s.events, chunk, wanted))
        for customer in conn.scalars(with_events):
            found[customer]["has_events"] = True
        _task_rows(conn, chunk, wanted, found)
        _outcome_rows(conn, chunk, wanted, found)
        _superseded_costs(conn, chunk, wanted, found)
        subscriptions = select(*_columns(s.subscriptions, SubscriptionRow)).where(
            sub.customer.in_(chunk), sub.starts_at_us < wanted.end_us
        )
        for row in conn.execute(subscriptions):
            found[row.customer]["subscriptions"].append(SubscriptionRow._make(row))
        seats = s.seat_counts.c
        seat_counts = select(*_columns(s.seat_counts, SeatCountRow)).where(
            seats.customer.in_(chunk), seats.effective_at_us < wanted.end_us
        )
        for row in conn.execute(seat_counts):
            found[row.customer]["seat_counts"].append(SeatCountRow._make(row))
    return found


def _superseded_costs(
    conn: Connection, customers: Sequence[str], wanted: RowsWanted, found: dict[str, Any]
) -> None:
    """The costs of the range's events replaced after the earliest as-of time that can ask
    for them (the range's start): each invoice then takes the ones that held at its own."""
    e, h = s.events.c, s.superseded_costs.c
    query = (
        select(e.customer, e.id, h.cost_nanousd, h.cost_visible_nanousd, h.cost_source, h.until_us)
        .join_from(s.superseded_costs, s.events, h.event_seq == e.seq)
        .where(_in_range(s.events, customers, wanted), h.until_us > wanted.start_us)
    )
    for row in conn.execute(query):
        found[row.customer]["superseded_costs"].append(SupersededCost._make(row[1:]))


def _task_rows(
    conn: Connection, customers: Sequence[str], wanted: RowsWanted, found: dict[str, Any]
) -> None:
    """Tasks that started in the range or have a status dated in it, and their statuses."""
    u, t = s.task_updates.c, s.tasks.c
    dated = select(u.task).where(_in_range(s.task_updates, customers, wanted))
    started = and_(t.started_at_us >= wanted.start_us, t.started_at_us < wanted.end_us)
    tasks = select(*_columns(s.tasks, TaskRow)).where(
        t.customer.in_(customers),
        t.created_at_us <= wanted.as_of_us,
        or_(started, t.id.in_(dated)),
    )
    updates = select(*_columns(s.task_updates, TaskUpdateRow)).where(
        u.customer.in_(customers),
        u.received_at_us <= wanted.as_of_us,
        u.task.in_(tasks.with_only_columns(t.id)),
    )
    for row in conn.execute(tasks):
        found[row.customer]["tasks"].append(TaskRow._make(row))
    for row in conn.execute(updates):
        found[row.customer]["task_updates"].append(TaskUpdateRow._make(row))


def _outcome_rows(
    conn: Connection, customers: Sequence[str], wanted: RowsWanted, found: dict[str, Any]
) -> None:
    """Claims made from `claimed_from_us` or judged in the range, and the verdicts on them."""
    o, a, d = s.outcomes.c, s.attestations.c, s.outcome_decisions.c
    start, end, until = wanted.start_us, wanted.end_us, wanted.as_of_us
    judged = (
        select(a.outcome)
        .where(a.occurred_at_us >= start, a.occurred_at_us < end, a.received_at_us <= until)
        .union(
            select(d.outcome).where(
                d.occurred_at_us >= start, d.occurred_at_us < end, d.received_at_us <= until
            )
        )
    )
    claims = select(*_columns(s.outcomes, OutcomeRow)).where(
        o.customer.in_(customers),
        o.received_at_us <= until,
        o.occurred_at_us < end,
        or_(o.occurred_at_us >= wanted.claimed_from_us, o.id.in_(judged)),
    )
    owner = {}
    for row in conn.execute(claims):
        found[row.customer]["outcomes"].append(OutcomeRow._make(row))
        owner[row.id] = row.customer
    ids = claims.with_only_columns(o.id)
    attestations = select(*_columns(s.attestations, AttestationRow)).where(
        a.outcome.in_(ids), a.received_at_us <= until
    )
    decisions = select(*_columns(s.outcome_decisions, DecisionRow)).where(
        d.outcome.in_(ids), d.received_at_us <= until
    )
    for row in conn.execute(attestations):
        found[owner[row.outcome]]["attestations"].append(AttestationRow._make(row))
    for row in conn.execute(decisions):
        found[owner[row.outcome]]["outcome_decisions"].append(DecisionRow._make(row))
    g = s.signals.c
    signals = select(*_columns(s.signals, SignalRow)).where(
        g.customer.in_(customers),
        g.about_task.in_(claims.with_only_columns(o.task)),
        g.received_at_us <= until,
    )
    for row in conn.execute(signals):
        found[row.customer]["signals"].append(SignalRow._make(row))
