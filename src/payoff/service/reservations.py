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
    SpendLimit,
    held_minor,
    hold,
    over_soft_limit,
    reservation_id,
)
from payoff.service.balances import BalanceStore, spend_minor
from payoff.service.clock import now_us
from payoff.service.credits import parse_amount_minor, wallet_currency
from payoff.store.protocol import ReservationStore


class ReservingStore(BalanceStore, ReservationStore, Protocol):
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

    limit = store.spend_limit(customer)
    # The spend is rated before the lock (a kept rating, at most a second old); what the
    # reservations hold is read under it.
    spent = 0 if limit is None else spend_minor(store, customer, currency)
    soft = False

    def decide(entries: list[CreditEntry], held: list[Reservation]) -> Reservation:
        nonlocal soft
        chosen = hold(entries, held, wanted, limit, spent)
        soft = over_soft_limit(limit, spent, held_minor([*held, chosen], at_us))
        return chosen

    chosen, created = store.hold_reservation(customer, wanted.id, decide)
    return reservation_json(chosen, at_us) | {"over_soft_limit": soft}, created


def set_spend_limit(
    store: ReservingStore, customer: str, soft: str | None, hard: str | None
) -> dict[str, Any]:
    """Set a customer's soft and hard spend limits for a period (None: no such limit)."""
    currency = wallet_currency(store, customer)
    limit = SpendLimit(
        currency,
        None if soft is None else parse_amount_minor(soft, currency, zero=True),
        None if hard is None else parse_amount_minor(hard, currency, zero=True),
    )
    store.put_spend_limit(customer, limit, now_us())
    return limit_json(customer, limit)


def limit_json(customer: str, limit: SpendLimit) -> dict[str, Any]:
    def shown(amount: int | None) -> str | None:
        return None if amount is None else format_minor(amount, limit.currency)

    return {
        "customer": customer,
        "currency": limit.currency,
        "soft": shown(limit.soft_minor),
        "hard": shown(limit.hard_minor),
    }


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
