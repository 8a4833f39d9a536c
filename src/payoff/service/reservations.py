"""Reservation use cases: hold an amount against a customer's available credit for a task,
settle it with the task's actual cost, list a customer's reservations.

The decision (`core.reservations.hold`) runs under the write lock with the wallet and the
held reservations as stored (`ReservationStore.hold_reservation`): concurrent requests,
from any number of server processes, never hold more than is available between them.
"""

from __future__ import annotations

from typing import Any, Protocol

from payoff.core.credits import CreditEntry, CreditError, format_minor
from payoff.core.errors import NotFound
from payoff.core.periods import iso_from_us
from payoff.core.reservations import (
    DEFAULT_EXPIRES_IN_S,
    MAX_EXPIRES_IN_S,
    US_PER_S,
    Reservation,
    hold,
    reservation_id,
)
from payoff.service.clock import now_us
from payoff.service.credits import WalletStore, parse_amount_minor, wallet_currency
from payoff.store.protocol import ReservationStore


class ReservingStore(WalletStore, ReservationStore, Protocol):
    """Wallets with the reservations held against them."""


class ReservationNotFound(NotFound):
    """No reservation by that id (or not the caller's to see)."""


def reserve(
    store: ReservingStore,
    customer: str,
    task: str,
    amount: str,
    expires_in_s: int = DEFAULT_EXPIRES_IN_S,
) -> tuple[dict[str, Any], bool]:
    """Hold `amount` for `task` until it is settled or `expires_in_s` pass; the reservation
    and whether it is new. Refused (ReservationRefused) when more than is available."""
    if not 1 <= expires_in_s <= MAX_EXPIRES_IN_S:
        raise CreditError(f"expires_in_s {expires_in_s} is not between 1 and {MAX_EXPIRES_IN_S}")
    currency = wallet_currency(store, customer)
    at_us = now_us()
    wanted = Reservation(
        reservation_id(customer, task),
        customer,
        task,
        parse_amount_minor(amount, currency),
        currency,
        at_us,
        at_us + expires_in_s * US_PER_S,
    )

    def decide(entries: list[CreditEntry], held: list[Reservation]) -> Reservation:
        return hold(entries, held, wanted)

    chosen, created = store.hold_reservation(customer, wanted.id, decide)
    return reservation_json(chosen, at_us), created


def settle(store: ReservingStore, reservation: str, cost: str) -> dict[str, Any]:
    """Close a held reservation with its task's actual cost (once; again changes nothing)."""
    found = store.get_reservation(reservation)
    if found is None:
        raise ReservationNotFound(f"no reservation {reservation!r}")
    cost_minor = parse_amount_minor(cost, found.currency, zero=True)
    settled = store.settle_reservation(reservation, cost_minor, now_us())
    assert settled is not None
    return reservation_json(settled, now_us())


def get_reservation(store: ReservingStore, reservation: str) -> dict[str, Any]:
    found = store.get_reservation(reservation)
    if found is None:
        raise ReservationNotFound(f"no reservation {reservation!r}")
    return reservation_json(found, now_us())


def reservation_json(r: Reservation, at_us: int) -> dict[str, Any]:
    return {
        "id": r.id,
        "customer": r.customer,
        "task": r.task,
        "amount": format_minor(r.amount_minor, r.currency),
        "currency": r.currency,
        "status": r.shown_status(at_us),
        "created_at": iso_from_us(r.created_at_us),
        "expires_at": iso_from_us(r.expires_at_us),
        "settled_cost": None
        if r.settled_minor is None
        else format_minor(r.settled_minor, r.currency),
    }
