"""What verifying reads: rows as they are stored, finalized documents as text, the chain.

Nothing here decodes or checks a document: a document edited in the database must reach
`payoff verify` as it is, to be named there, not refused on the way.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, or_, select

from payoff.core.chain import ChainEntry
from payoff.core.ledger_rows import (
    AttestationRow,
    DecisionRow,
    EventRow,
    InvoiceRow,
    LedgerRows,
    OutcomeRow,
    PlanRow,
    SubscriptionRow,
    TaskRow,
    TaskUpdateRow,
)
from payoff.store import schema as s
from payoff.store.in_lists import chunks


class RowsWanted(NamedTuple):
    """The rows that may bear on one customer's invoice: a superset that
    `core.derivation.select_rows` narrows to exactly those it reads."""

    customer: str
    start_us: int
    """The start of the earliest period the invoice rated."""
    end_us: int
    """The end of the invoice's own period."""
    as_of_us: int
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

    def ledger_rows(self, wanted: RowsWanted) -> LedgerRows:
        """One customer's rows that may bear on an invoice (see RowsWanted), as stored."""
        subscriptions, plans = self._subscriptions_and_plans(wanted)
        with self.engine.connect() as conn:
            tasks, updates = _task_rows(conn, wanted)
            outcomes, attestations, decisions = _outcome_rows(conn, wanted)
            return LedgerRows(
                plans=plans,
                subscriptions=subscriptions,
                invoices=self._invoice_rows(wanted.invoices),
                tasks=tasks,
                task_updates=updates,
                events=_event_rows(conn, wanted),
                outcomes=outcomes,
                attestations=attestations,
                outcome_decisions=decisions,
            )

    def _subscriptions_and_plans(
        self, wanted: RowsWanted
    ) -> tuple[tuple[SubscriptionRow, ...], tuple[PlanRow, ...]]:
        sub, p = s.subscriptions.c, s.plans.c
        with self.engine.connect() as conn:
            subscriptions = tuple(
                SubscriptionRow(*row)
                for row in conn.execute(
                    select(*_columns(s.subscriptions, SubscriptionRow)).where(
                        sub.customer == wanted.customer, sub.starts_at_us < wanted.end_us
                    )
                )
            )
            refs = {(r.plan_id, r.plan_version) for r in subscriptions} | set(wanted.plans)
            plans = []
            for chunk in chunks(sorted({plan_id for plan_id, _ in refs})):
                query = select(p.id, p.version, p.currency, p.digest, p.body).where(p.id.in_(chunk))
                for row in conn.execute(query):
                    if (row.id, row.version) in refs:
                        plans.append(PlanRow(*row[:4], json.loads(row.body)))
        return subscriptions, tuple(plans)

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


def _event_rows(conn: Connection, wanted: RowsWanted) -> tuple[EventRow, ...]:
    e = s.events.c
    query = select(*_columns(s.events, EventRow)).where(
        e.customer == wanted.customer,
        e.occurred_at_us >= wanted.start_us,
        e.occurred_at_us < wanted.end_us,
        e.received_at_us <= wanted.as_of_us,
    )
    return tuple(EventRow(*row) for row in conn.execute(query))


def _task_rows(
    conn: Connection, wanted: RowsWanted
) -> tuple[tuple[TaskRow, ...], tuple[TaskUpdateRow, ...]]:
    """Tasks that started in the range or have a status dated in it, and their statuses."""
    u, t = s.task_updates.c, s.tasks.c
    customer, until = wanted.customer, wanted.as_of_us
    dated = select(u.task).where(
        u.customer == customer,
        u.received_at_us <= until,
        u.occurred_at_us >= wanted.start_us,
        u.occurred_at_us < wanted.end_us,
    )
    started = and_(t.started_at_us >= wanted.start_us, t.started_at_us < wanted.end_us)
    tasks = select(*_columns(s.tasks, TaskRow)).where(
        t.customer == customer, t.created_at_us <= until, or_(started, t.id.in_(dated))
    )
    updates = select(*_columns(s.task_updates, TaskUpdateRow)).where(
        u.customer == customer,
        u.received_at_us <= until,
        u.task.in_(tasks.with_only_columns(t.id)),
    )
    return (
        tuple(TaskRow(*row) for row in conn.execute(tasks)),
        tuple(TaskUpdateRow(*row) for row in conn.execute(updates)),
    )


def _outcome_rows(
    conn: Connection, wanted: RowsWanted
) -> tuple[tuple[OutcomeRow, ...], tuple[AttestationRow, ...], tuple[DecisionRow, ...]]:
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
    claims = select(o.id).where(
        o.customer == wanted.customer,
        o.received_at_us <= until,
        o.occurred_at_us < end,
        or_(o.occurred_at_us >= wanted.claimed_from_us, o.id.in_(judged)),
    )
    outcomes = select(*_columns(s.outcomes, OutcomeRow)).where(o.id.in_(claims))
    attestations = select(*_columns(s.attestations, AttestationRow)).where(
        a.outcome.in_(claims), a.received_at_us <= until
    )
    decisions = select(*_columns(s.outcome_decisions, DecisionRow)).where(
        d.outcome.in_(claims), d.received_at_us <= until
    )
    return (
        tuple(OutcomeRow(*row) for row in conn.execute(outcomes)),
        tuple(AttestationRow(*row) for row in conn.execute(attestations)),
        tuple(DecisionRow(*row) for row in conn.execute(decisions)),
    )
