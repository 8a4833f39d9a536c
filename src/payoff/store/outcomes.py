"""The outcome side of the SQL store: claims and the verdicts given on them.

Verdicts are kept as given: a customer's attestations (records) and auditors' or
operators' decisions, append-only. An outcome's status is derived from them by the pure
core (`payoff.core.outcomes`), as of any time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, or_, select

from payoff.core.outcomes import VERDICT_ACTIONS
from payoff.store import schema as s
from payoff.store.billing import any_row
from payoff.store.in_lists import chunks

MAX_OUTCOMES_LISTED = 100_000


class StoredOutcome(NamedTuple):
    id: str
    task: str
    customer: str
    type: str
    value: Decimal | None
    evidence_digest: str | None
    claimed_at_us: int
    received_at_us: int


class StoredVerdict(NamedTuple):
    outcome: str
    action: str  # verify | reject | reverse
    by: str  # customer | auditor
    at_us: int
    reason: str | None
    received_at_us: int


def _outcome(row: Any) -> StoredOutcome:
    value = Decimal(row.value) if row.value is not None else None
    return StoredOutcome(
        row.id,
        row.task,
        row.customer,
        row.type,
        value,
        row.evidence_digest,
        row.occurred_at_us,
        row.received_at_us,
    )


def _read_verdicts(
    conn: Any,
    of_outcomes: Callable[[Any], Any],
    as_of_us: int | None,
    found: dict[str, list[StoredVerdict]],
) -> None:
    """Add the attestations and decisions on the chosen outcomes to `found`."""
    a, d = s.attestations.c, s.outcome_decisions.c
    attested = select(a.outcome, a.verdict, a.occurred_at_us, a.received_at_us).where(
        of_outcomes(a.outcome)
    )
    decided = select(d.outcome, d.action, d.by, d.occurred_at_us, d.reason, d.received_at_us).where(
        of_outcomes(d.outcome)
    )
    if as_of_us is not None:
        attested = attested.where(a.received_at_us <= as_of_us)
        decided = decided.where(d.received_at_us <= as_of_us)
    for outcome, verdict, at_us, received_at_us in conn.execute(attested):
        found[outcome].append(
            StoredVerdict(
                outcome, VERDICT_ACTIONS[verdict], "customer", at_us, None, received_at_us
            )
        )
    for row in conn.execute(decided):
        found[row[0]].append(StoredVerdict(*row))


def _in_time_order(found: dict[str, list[StoredVerdict]]) -> dict[str, list[StoredVerdict]]:
    for verdicts in found.values():
        verdicts.sort(key=lambda v: (v.at_us, v.received_at_us))
    return found


class OutcomeQueries:
    engine: Engine
    _write_transaction: Callable[[], AbstractContextManager[Connection]]
    """SqlStore's: a transaction holding the write lock (decisions are checked under it)."""

    def get_outcomes(self, ids: Iterable[str]) -> dict[str, StoredOutcome]:
        o = s.outcomes.c
        found: dict[str, StoredOutcome] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                for row in conn.execute(select(s.outcomes).where(o.id.in_(chunk))):
                    found[row.id] = _outcome(row)
        return found

    def _candidates(
        self,
        claimed_from_us: int,
        start_us: int,
        end_us: int,
        as_of_us: int,
        customer: str | None,
    ) -> Any:
        """Outcomes that may be verified in [start_us, end_us): claimed from
        `claimed_from_us` until the end, or given a verdict in the window."""
        o, a, d = s.outcomes.c, s.attestations.c, s.outcome_decisions.c
        judged = (
            select(a.outcome)
            .where(
                a.occurred_at_us >= start_us,
                a.occurred_at_us < end_us,
                a.received_at_us <= as_of_us,
            )
            .union(
                select(d.outcome).where(
                    d.occurred_at_us >= start_us,
                    d.occurred_at_us < end_us,
                    d.received_at_us <= as_of_us,
                )
            )
        )
        # Each side of the OR is read by index (`ix_outcomes_occurred`, the id; the verdicts
        # by `ix_attestations_occurred`, `ix_outcome_decisions_occurred`), not every claim.
        query = select(s.outcomes).where(
            o.received_at_us <= as_of_us,
            o.occurred_at_us < end_us,
            or_(o.occurred_at_us >= claimed_from_us, o.id.in_(judged)),
        )
        return query.where(o.customer == customer) if customer is not None else query

    def outcomes_in(
        self,
        claimed_from_us: int,
        start_us: int,
        end_us: int,
        as_of_us: int,
        customer: str | None = None,
    ) -> list[StoredOutcome]:
        query = self._candidates(claimed_from_us, start_us, end_us, as_of_us, customer)
        o = s.outcomes.c
        with self.engine.connect() as conn:
            return [_outcome(row) for row in conn.execute(query.order_by(o.occurred_at_us, o.id))]

    def verdicts_in(
        self,
        claimed_from_us: int,
        start_us: int,
        end_us: int,
        as_of_us: int,
        customer: str | None = None,
    ) -> dict[str, list[StoredVerdict]]:
        """The verdicts (received by `as_of_us`) on the outcomes `outcomes_in` returns: one
        query per kind, not lists of ids."""
        candidates = self._candidates(claimed_from_us, start_us, end_us, as_of_us, customer)
        ids = candidates.with_only_columns(s.outcomes.c.id)
        found: dict[str, list[StoredVerdict]] = defaultdict(list)
        with self.engine.connect() as conn:
            _read_verdicts(conn, lambda column: column.in_(ids), as_of_us, found)
        return _in_time_order(found)

    def stored_attestations(self, ids: Iterable[str]) -> set[str]:
        a = s.attestations.c
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                found.update(conn.scalars(select(a.id).where(a.id.in_(chunk))))
        return found

    def list_outcome_claims(
        self, customer: str | None = None, *, limit: int = MAX_OUTCOMES_LISTED, offset: int = 0
    ) -> list[StoredOutcome]:
        o = s.outcomes.c
        query = select(s.outcomes).order_by(o.occurred_at_us, o.id).limit(limit).offset(offset)
        if customer is not None:
            query = query.where(o.customer == customer)
        with self.engine.connect() as conn:
            return [_outcome(row) for row in conn.execute(query)]

    def verdicts_for(
        self, ids: Iterable[str], as_of_us: int | None = None
    ) -> dict[str, list[StoredVerdict]]:
        """Every verdict on these outcomes (received by `as_of_us`), in time order."""
        found: dict[str, list[StoredVerdict]] = defaultdict(list)
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                _read_verdicts(conn, lambda column: column.in_(chunk), as_of_us, found)  # noqa: B023
        return _in_time_order(found)

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
        """Keep a decision; `before_write` runs first, under the write lock (see SqlStore.write)."""
        with self._write_transaction() as conn:
            if before_write is not None:
                before_write()
            conn.execute(
                s.outcome_decisions.insert().values(
                    outcome=outcome,
                    action=action,
                    by=by,
                    reason=reason,
                    occurred_at_us=at_us,
                    received_at_us=now_us,
                )
            )

    def outcomes_moved(
        self,
        customer: str,
        claimed_from_us: int,
        received_after_us: int,
        until_us: int,
        period_end_us: int,
    ) -> bool:
        """Whether the customer has a claim, made before `period_end_us` (a claim cannot be
        verified before it is made), received in (received_after, until] or claimed from
        `claimed_from_us` on (its acceptance deadline may have passed since)."""
        o = s.outcomes.c
        query = select(o.id).where(
            o.customer == customer,
            o.received_at_us <= until_us,
            o.occurred_at_us < period_end_us,
            or_(o.received_at_us > received_after_us, o.occurred_at_us >= claimed_from_us),
        )
        return any_row(self.engine, [query])

    def verdicts_received_between(self, customer: str, after_us: int, until_us: int) -> bool:
        """Whether a verdict on one of the customer's outcomes arrived in (after, until]."""
        o, a, d = s.outcomes.c, s.attestations.c, s.outcome_decisions.c
        mine = select(o.id).where(o.customer == customer)
        queries = [
            select(column.outcome).where(
                column.outcome.in_(mine),
                column.received_at_us > after_us,
                column.received_at_us <= until_us,
            )
            for column in (a, d)
        ]
        return any_row(self.engine, queries)
