"""The real-time balance: a customer's available credit less what the open period's usage
costs so far, at its plan (what it would owe if the period closed now, before tax).

Rating reads the daily rollups (`store.rollups`), never the period's events one by one;
and a rating is kept per customer and reused while nothing of the period arrived since it
was made (`received_between`: usage, outcomes, task updates, re-priced costs), for at most
`RATED_MAX_AGE_US`, so verdicts and plan changes, which that check does not see, show
within that time too, as does a record stamped before a rating but committed just after
it. A read takes no lock: a record acknowledged (committed) before it is seen by it.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from payoff.core.currency import round_money, to_minor
from payoff.core.invoicing import plain, totals
from payoff.core.periods import Period, from_us, iso_from_us
from payoff.core.reservations import held_minor
from payoff.service.clock import now_us
from payoff.service.credits import WalletStore, wallet_balance
from payoff.service.rating import rate_period
from payoff.store.protocol import RatingStore, ReservationStore

RATED_MAX_AGE_US = 1_000_000
"""A kept rating is made again after this long whatever the checks say (1 s)."""
MAX_KEPT_RATINGS = 10_000


class BalanceStore(WalletStore, ReservationStore, RatingStore, Protocol):
    """Wallets and their reservations and limits, beside what rating a period reads."""


@dataclass(frozen=True)
class KeptRating:
    as_of_us: int
    spend: Decimal
    currency: str | None


_kept: weakref.WeakKeyDictionary[object, dict[tuple[str, str], KeptRating]] = (
    weakref.WeakKeyDictionary()
)
"""Ratings kept per open store (gone with it), by customer and period."""
_kept_lock = threading.Lock()


def live_balance(store: BalanceStore, customer: str) -> dict[str, str | bool | None]:
    """`credits_available` less the open period's `spend` so far: the `balance`, with the
    period and the time the spend was rated as of; and whether the spend plus what
    reservations hold is past the customer's soft or hard limit."""
    wallet = wallet_balance(store, customer)  # refuses an unknown customer
    as_of_us = now_us()
    period = Period.month(from_us(as_of_us).strftime("%Y-%m"))
    rating = _rating(store, customer, period, as_of_us)
    currency = wallet["currency"]
    available = Decimal(wallet["available"])
    spend = rating.spend if rating.currency in (None, currency) else None
    return {
        "customer": customer,
        "currency": currency,
        "period": period.label,
        "credits_available": wallet["available"],
        "spend": None if spend is None else plain(spend),
        "balance": None if spend is None else plain(available - spend),
        "rated_as_of": iso_from_us(rating.as_of_us),
        **_over_limits(store, customer, spend, as_of_us),
    }


def _over_limits(
    store: BalanceStore, customer: str, spend: Decimal | None, at_us: int
) -> dict[str, bool]:
    limit = store.spend_limit(customer)
    if limit is None or spend is None:
        return {"over_soft_limit": False, "over_hard_limit": False}
    used = to_minor(spend, limit.currency) + held_minor(store.reservations(customer), at_us)
    return {
        "over_soft_limit": limit.soft_minor is not None and used > limit.soft_minor,
        "over_hard_limit": limit.hard_minor is not None and used > limit.hard_minor,
    }


def spend_minor(store: BalanceStore, customer: str, currency: str) -> int:
    """The open period's spend so far in minor units of `currency` (0 when the plan is in
    another currency, or there is none), from the kept rating."""
    at_us = now_us()
    period = Period.month(from_us(at_us).strftime("%Y-%m"))
    rating = _rating(store, customer, period, at_us)
    return to_minor(rating.spend, currency) if rating.currency == currency else 0


def _rating(store: BalanceStore, customer: str, period: Period, as_of_us: int) -> KeptRating:
    key = (customer, period.label)
    with _kept_lock:
        kept = _kept.setdefault(store, {}).get(key)
    if kept is not None and as_of_us - kept.as_of_us < RATED_MAX_AGE_US:
        changed = store.received_between(
            customer, period.start_us, period.end_us, kept.as_of_us, as_of_us
        )
        if not changed:
            return kept
    rated = rate_period(store, period, as_of_us, customer).get(customer)
    if rated is None:
        made = KeptRating(as_of_us, Decimal(0), None)
    else:
        total = totals(rated.plan, rated.fees).total
        currency = rated.plan.currency
        made = KeptRating(as_of_us, round_money(total, currency, rated.plan.rounding), currency)
    with _kept_lock:
        ratings = _kept.setdefault(store, {})
        if len(ratings) >= MAX_KEPT_RATINGS:
            ratings.clear()
        ratings[key] = made
    return made
