"""Plan and customer use cases: apply and find plan versions, list them, add customers, and
put customers on plans (subscribe, unsubscribe).

A plan version is immutable: applying the same body twice is a no-op, another body under the
same (id, version) is refused. A subscription change never reaches back into a period
already finalized, and a customer keeps one currency.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from payoff.core.canonical import digest
from payoff.core.errors import NotFound, Refused
from payoff.core.periods import US_PER_DAY, Period
from payoff.core.plan import Plan
from payoff.core.statuses import BILLED_STATUSES
from payoff.plan_files import load_plan, parse_plan, plan_from_body
from payoff.service.clock import now_us
from payoff.store.billing import StoredPlan, Subscription
from payoff.store.protocol import BillingStore

ALL_TIME_END_US = 2**62
"""Past any moment a ledger holds: a window to it from 0 is all of time."""


class BillingError(Refused):
    """A billing request that cannot be carried out; the message says why."""


class PlanNotFound(NotFound, BillingError):
    """No plan with that id, or no such version of it."""


class InvoiceNotFound(NotFound, BillingError):
    """No invoice with that id."""


def apply_plan(store: BillingStore, path: str | Path) -> tuple[Plan, bool, list[str]]:
    """Store a plan file's version: (plan, whether it is new, warnings)."""
    return _apply(store, *load_plan(path))


def apply_plan_text(store: BillingStore, text: str, source: str) -> tuple[Plan, bool, list[str]]:
    """As apply_plan, from a plan's YAML text."""
    return _apply(store, *parse_plan(text, source))


def _apply(store: BillingStore, plan: Plan, body: dict[str, Any]) -> tuple[Plan, bool, list[str]]:
    created = store.put_plan(plan.id, plan.version, plan.currency, body, digest(body), now_us())
    seen_tasks, seen_outcomes = store.known_types()
    return plan, created, plan.warnings(seen_tasks, seen_outcomes)


def plan_of(stored: StoredPlan) -> Plan:
    return plan_from_body(stored.body)


def find_plan(store: BillingStore, reference: str) -> StoredPlan:
    """A plan by `ID` (latest version) or `ID@VERSION`."""
    plan_id, _, version = reference.partition("@")
    if version and not (version.isascii() and version.isdigit() and len(version) <= 9):
        raise BillingError(f"plan version must be a number below 10^9, got {reference!r}")
    found: StoredPlan | None = store.get_plan(plan_id, int(version) if version else None)
    if found is None:
        raise PlanNotFound(f"no plan {reference!r}; apply it with `payoff plans apply FILE`")
    return found


def plan_json(stored: StoredPlan) -> dict[str, Any]:
    """A plan version as listed (HTTP and `payoff plans list --json`): its body and the
    names of its charges."""
    return {
        "id": stored.id,
        "version": stored.version,
        "currency": stored.currency,
        "digest": stored.digest,
        "charges": [charge["name"] for charge in stored.body["charges"]],
        "body": stored.body,
    }


def list_plans(store: BillingStore) -> list[dict[str, Any]]:
    """Every plan version, by id and version."""
    return [plan_json(stored) for stored in store.list_plans()]


def add_customer(
    store: BillingStore,
    customer: str,
    name: str | None = None,
    *,
    address: str | None = None,
    email: str | None = None,
    tax_id: str | None = None,
) -> bool:
    """Add a customer, or update its name and contact details (a `None` keeps one); True
    when it is new. The details are printed on its invoices."""
    created: bool = store.add_customer(
        customer, name, now_us(), address=address, email=email, tax_id=tax_id
    )
    return created


FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(8999, 12, 31)
"""Subscription days lie where records may: 1970-01-01 to 8999-12-31."""


def _day_start_us(day: dt.date) -> int:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BillingError(f"a day is from {FIRST_DAY} to {LAST_DAY}, got {day}")
    return Period.month(f"{day.year:04d}-{day.month:02d}").start_us + (day.day - 1) * US_PER_DAY


def _check_not_finalized(store: BillingStore, customer: str, day: dt.date) -> None:
    """A subscription change may not reach back into a period already billed."""
    label = f"{day.year:04d}-{day.month:02d}"
    billed = store.list_invoices(customer, statuses=BILLED_STATUSES, since_period=label, limit=None)
    if billed:
        raise BillingError(
            f"{customer}'s invoice for {billed[-1].period} is finalized: a subscription change "
            f"must start after it, not on {day}"
        )


def subscriptions(store: BillingStore, period: Period | None = None) -> list[Subscription]:
    """The subscriptions overlapping a period, by customer and start; without one, all."""
    if period is None:
        return store.subscriptions(0, ALL_TIME_END_US)
    return store.subscriptions(period.start_us, period.end_us)


def subscribe(store: BillingStore, customer: str, reference: str, starts: dt.date) -> StoredPlan:
    """Put a customer on a plan version from a day; the previous subscription ends then.

    A customer keeps one currency (late usage is billed on later invoices, in it), and a
    change cannot start inside a period already finalized.
    """
    plan = find_plan(store, reference)
    _check_not_finalized(store, customer, starts)
    start_us = _day_start_us(starts)
    previous = store.subscriptions(0, start_us + 1, customer)
    for sub in previous:
        currency = find_plan(store, f"{sub.plan_id}@{sub.plan_version}").currency
        if currency != plan.currency:
            raise BillingError(
                f"{customer} is billed in {currency}; plan {plan.id}@{plan.version} is in "
                f"{plan.currency}: a customer's currency does not change"
            )
    store.subscribe(customer, plan.id, plan.version, start_us, now_us())
    return plan


def unsubscribe(store: BillingStore, customer: str, ends: dt.date) -> None:
    """End a customer's subscription at the start of a day (it is not billed from then)."""
    _check_not_finalized(store, customer, ends)
    if not store.end_subscription(customer, _day_start_us(ends), now_us()):
        raise BillingError(f"{customer} has no subscription running on {ends}")
