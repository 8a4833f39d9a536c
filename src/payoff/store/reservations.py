"""Reservations in the SQL store: held under the write lock, beside the wallet they draw on.

`hold_reservation` reads the customer's wallet and reservations and stores what the rule
(`core.reservations.hold`) grants, in one transaction under the write lock: on SQLite and
PostgreSQL alike, concurrent requests are decided one after the other, each seeing what the
one before it held. Settling closes a reservation once; a second settle changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import Connection, Engine, and_, select, update

from payoff.core.credits import CreditEntry
from payoff.core.reservations import Reservation, SpendLimit
from payoff.store import schema as s
from payoff.store.credits import wallet_entries

MAX_RESERVATIONS_READ = 100_000
"""Reservations of one customer read at most (its held ones, or one page of a listing)."""

Decide = Callable[[list[CreditEntry], list[Reservation]], Reservation]
"""Given the wallet and the customer's reservations, the reservation to hold (or raise)."""


class ReservationQueries:
    engine: Engine
    _write_transaction: Callable[[], AbstractContextManager[Connection]]

    def hold_reservation(
        self, customer: str, reservation_id: str, decide: Decide
    ) -> tuple[Reservation, bool]:
        """Store what `decide` grants, under the write lock; True when it is new. `decide`
        sees the customer's held reservations and the one of `reservation_id` (whatever
        its status), so a request sent again is answered, not held twice."""
        r = s.reservations.c
        with self._write_transaction() as conn:
            held = _reservations(conn, customer, only_held=True)
            found = conn.execute(select(s.reservations).where(r.id == reservation_id)).first()
            if found is not None and found.status != "held":
                held.append(_reservation(found))
            chosen = decide(wallet_entries(conn, customer), held)
            if found is not None:
                return chosen, False
            conn.execute(s.reservations.insert().values(**_row(chosen)))
            return chosen, True

    def settle_reservation(
        self, reservation_id: str, cost_minor: int, now_us: int
    ) -> Reservation | None:
        """Close a held reservation with its task's actual cost; None when there is none.
        A reservation closed already is returned as it is."""
        r = s.reservations.c
        with self._write_transaction() as conn:
            conn.execute(
                update(s.reservations)
                .where(and_(r.id == reservation_id, r.status == "held"))
                .values(status="settled", settled_minor=cost_minor, closed_at_us=now_us)
            )
            found = conn.execute(select(s.reservations).where(r.id == reservation_id)).first()
        return None if found is None else _reservation(found)

    def put_spend_limit(self, customer: str, limit: SpendLimit, now_us: int) -> None:
        """Set a customer's spend limits (replacing the ones before)."""
        with self._write_transaction() as conn:
            conn.execute(s.spend_limits.delete().where(s.spend_limits.c.customer == customer))
            conn.execute(
                s.spend_limits.insert().values(
                    customer=customer,
                    currency=limit.currency,
                    soft_minor=limit.soft_minor,
                    hard_minor=limit.hard_minor,
                    updated_at_us=now_us,
                )
            )

    def spend_limit(self, customer: str) -> SpendLimit | None:
        """A customer's spend limits, or None."""
        c = s.spend_limits.c
        with self.engine.connect() as conn:
            row = conn.execute(select(s.spend_limits).where(c.customer == customer)).first()
        if row is None:
            return None
        return SpendLimit(row.currency, row.soft_minor, row.hard_minor)

    def get_reservation(self, reservation_id: str) -> Reservation | None:
        r = s.reservations.c
        with self.engine.connect() as conn:
            found = conn.execute(select(s.reservations).where(r.id == reservation_id)).first()
        return None if found is None else _reservation(found)

    def reservations(self, customer: str) -> list[Reservation]:
        """A customer's reservations, oldest first (at most MAX_RESERVATIONS_READ)."""
        with self.engine.connect() as conn:
            return _reservations(conn, customer, only_held=False)


def _reservations(conn: Connection, customer: str, *, only_held: bool) -> list[Reservation]:
    r = s.reservations.c
    query = select(s.reservations).where(r.customer == customer)
    if only_held:
        query = query.where(r.status == "held")
    query = query.order_by(r.created_at_us, r.id).limit(MAX_RESERVATIONS_READ)
    return [_reservation(row) for row in conn.execute(query)]


def _row(reservation: Reservation) -> dict[str, Any]:
    return {
        "id": reservation.id,
        "customer": reservation.customer,
        "task": reservation.task,
        "amount_minor": reservation.amount_minor,
        "currency": reservation.currency,
        "created_at_us": reservation.created_at_us,
        "expires_at_us": reservation.expires_at_us,
        "status": reservation.status,
        "settled_minor": reservation.settled_minor,
        "closed_at_us": reservation.closed_at_us,
    }


def _reservation(row: Any) -> Reservation:
    return Reservation(
        id=row.id,
        customer=row.customer,
        task=row.task,
        amount_minor=int(row.amount_minor),
        currency=row.currency,
        created_at_us=int(row.created_at_us),
        expires_at_us=int(row.expires_at_us),
        status=row.status,
        settled_minor=None if row.settled_minor is None else int(row.settled_minor),
        closed_at_us=None if row.closed_at_us is None else int(row.closed_at_us),
    )
