"""Seat use cases: set a customer's seat count from a day, and list the counts recorded.

Seat counts are append-only: a change is a new count from a day, never an edit. Like a
subscription change, it may not reach back into a period already finalized.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from payoff.core.periods import iso_from_us
from payoff.core.seats import MAX_SEATS
from payoff.service.access import CustomerNotFound
from payoff.service.clock import now_us
from payoff.service.plans import BillingError, check_not_finalized, day_start_us
from payoff.store.protocol import BillingStore


def set_seats(store: BillingStore, customer: str, seats: int, starts: dt.date) -> bool:
    """Record `seats` for a registered customer from the start of a day; False when that
    count was already the last recorded for the day (setting it again is a no-op)."""
    if isinstance(seats, bool) or not 0 <= seats <= MAX_SEATS:
        raise BillingError(f"seats: a count from 0 to {MAX_SEATS:,}, got {seats}")
    if store.get_customer(customer) is None:
        raise CustomerNotFound(
            f"no customer {customer!r}: add it with `payoff customers add {customer}`, or "
            "check the id in `payoff customers list`"
        )
    start_us = day_start_us(starts)
    check_not_finalized(store, customer, starts, "a seat change")
    return store.set_seats(customer, start_us, seats, now_us())


def list_seats(store: BillingStore, customer: str) -> list[dict[str, Any]]:
    """A customer's seat counts as recorded, in that order: the day each takes effect from,
    the seats, and when it was recorded (a later count for the same day replaces it)."""
    return [
        {
            "customer": count.customer,
            "from": iso_from_us(count.effective_at_us)[:10],
            "seats": count.seats,
            "recorded_at": iso_from_us(count.recorded_at_us),
        }
        for count in store.seat_counts(customer, now_us())
    ]
