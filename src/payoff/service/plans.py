"""Plan and customer use cases: apply, find, list and show plan versions; add, list and show
customers; put customers on plans (subscribe, unsubscribe) and list their subscriptions.

A plan version is immutable: applying the same body twice is a no-op, another body under the
same (id, version) is refused. A subscription change never reaches back into a period
already finalized, and a customer keeps one currency.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Protocol

from payoff.core.canonical import digest
from payoff.core.errors import NotFound, Refused
from payoff.core.periods import US_PER_DAY, Period, iso_from_us
from payoff.core.plan import Plan
from payoff.core.statuses import BILLED_STATUSES
from payoff.core.versions import MAX_VERSION, version_of
from payoff.plan_files import load_plan, parse_plan, plan_from_body, with_contracts
from payoff.service.access import CustomerNotFound
from payoff.service.clock import now_us
from payoff.service.contracts import ContractBook
from payoff.store.billing import MAX_CUSTOMERS_LISTED, Customer, StoredPlan, Subscription
from payoff.store.protocol import BillingStore, ContractStore


class PlanStore(BillingStore, ContractStore, Protocol):
    """Plans with the outcome contracts their charges name."""


class BillingError(Refused):
    """A billing request that cannot be carried out; the message says why."""


class PlanNotFound(NotFound, BillingError):
    """No plan with that id, or no such version of it."""


class InvoiceNotFound(NotFound, BillingError):
    """No invoice with that id."""


def apply_plan(store: PlanStore, path: str | Path) -> tuple[Plan, bool, list[str]]:
    """Store a plan file's version: (plan, whether it is new, warnings). The outcome
    contracts its charges name must be applied first."""
    plan, body = load_plan(path)
    return _apply(store, with_contracts(plan, ContractBook(store), str(path)), body)


def apply_plan_text(store: PlanStore, text: str, source: str) -> tuple[Plan, bool, list[str]]:
    """As apply_plan, from a plan's YAML text."""
    plan, body = parse_plan(text, source)
    return _apply(store, with_contracts(plan, ContractBook(store), source), body)


def _apply(store: PlanStore, plan: Plan, body: dict[str, Any]) -> tuple[Plan, bool, list[str]]:
    created = store.put_plan(plan.id, plan.version, plan.currency, body, digest(body), now_us())
    seen_tasks, seen_outcomes = store.known_types()
    return plan, created, plan.warnings(seen_tasks, seen_outcomes)


def plan_of(store: ContractStore, stored: StoredPlan) -> Plan:
    """A stored plan's value, with the contracts its charges name."""
    return plan_from_body(stored.body, ContractBook(store))


def find_plan(store: BillingStore, reference: str) -> StoredPlan:
    """A plan by `ID` (latest version) or `ID@VERSION`."""
    plan_id, _, version = reference.partition("@")
    number = version_of(version) if version else None
    if version and number is None:
        raise BillingError(
            f"plan version must be a number from 1 to {MAX_VERSION:,}, got {reference!r}"
        )
    found: StoredPlan | None = store.get_plan(plan_id, number)
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


def _plan_label(sub: Subscription) -> str:
    return f"{sub.plan_id}@{sub.plan_version}"


def list_customers(
    store: BillingStore, *, limit: int = MAX_CUSTOMERS_LISTED, offset: int = 0
) -> list[dict[str, Any]]:
    """Registered customers by id: name, when added, and the plan they are on now (or null)."""
    found = store.list_customers(limit=limit, offset=offset)
    now = now_us()
    current = {sub.customer: _plan_label(sub) for sub in store.subscriptions(now, now + 1)}
    return [_customer_json(customer, current.get(customer.id)) for customer in found]


def _customer_json(customer: Customer, plan: str | None) -> dict[str, Any]:
    return {
        "id": customer.id,
        "name": customer.name,
        "created_at": iso_from_us(customer.created_at_us),
        "plan": plan,
        "address": customer.address,
        "email": customer.email,
        "tax_id": customer.tax_id,
    }


def show_customer(store: BillingStore, customer: str) -> dict[str, Any]:
    """One customer with every subscription it had and its invoices (up to the store's bound)."""
    found = store.get_customer(customer)
    if found is None:
        raise CustomerNotFound(f"no customer {customer!r}; see `payoff customers list`")
    subscriptions = list_subscriptions(store, customer)
    now = now_us()
    running = store.subscriptions(now, now + 1, customer)
    invoices = [
        {
            "id": stored.id,
            "period": stored.period,
            "status": stored.status,
            "currency": stored.currency,
            "total": str(stored.total),
        }
        for stored in store.list_invoices(customer)
    ]
    document = _customer_json(found, _plan_label(running[-1]) if running else None)
    return {**document, "subscriptions": subscriptions, "invoices": invoices}


def list_subscriptions(store: BillingStore, customer: str | None = None) -> list[dict[str, Any]]:
    """Every subscription, or one customer's, by customer and start; an open one ends null."""
    return [
        {
            "customer": sub.customer,
            "plan": _plan_label(sub),
            "starts_at": iso_from_us(sub.starts_at_us),
            "ends_at": None if sub.ends_at_us is None else iso_from_us(sub.ends_at_us),
        }
        for sub in subscriptions(store, customer=customer)
    ]


def show_plan(store: BillingStore, reference: str) -> dict[str, Any]:
    """One plan version (`ID` for the latest, or `ID@VERSION`) as listed, body included."""
    return plan_json(find_plan(store, reference))


FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(8999, 12, 31)
"""Subscription days lie where records may: 1970-01-01 to 8999-12-31."""


def day_start_us(day: dt.date) -> int:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BillingError(f"a day is from {FIRST_DAY} to {LAST_DAY}, got {day}")
    return Period.month(f"{day.year:04d}-{day.month:02d}").start_us + (day.day - 1) * US_PER_DAY


def check_not_finalized(
    store: BillingStore, customer: str, day: dt.date, change: str = "a subscription change"
) -> None:
    """A subscription (or seat) change may not reach back into a period already billed."""
    label = f"{day.year:04d}-{day.month:02d}"
    billed = store.list_invoices(customer, statuses=BILLED_STATUSES, since_period=label, limit=None)
    if billed:
        raise BillingError(
            f"{customer}'s invoice for {billed[-1].period} is finalized: {change} must "
            f"start after it, not on {day}"
        )


def subscriptions(
    store: BillingStore, period: Period | None = None, customer: str | None = None
) -> list[Subscription]:
    """The subscriptions overlapping a period (without one, of all time), by customer and
    start; one customer's when named."""
    if period is None:
        start_us, end_us = day_start_us(FIRST_DAY), day_start_us(LAST_DAY) + US_PER_DAY
    else:
        start_us, end_us = period.start_us, period.end_us
    return store.subscriptions(start_us, end_us, customer)


def subscribe(
    store: BillingStore,
    customer: str,
    reference: str,
    starts: dt.date,
    *,
    create: bool = True,
) -> StoredPlan:
    """Put a customer on a plan version from a day; the previous subscription ends then.

    An unregistered customer is registered, or refused when `create` is False (as
    `payoff subscribe` does unless told `--create`: a mistyped id must not become a billed
    customer). A customer keeps one currency (late usage is billed on later invoices, in
    it), and a change cannot start inside a period already finalized.
    """
    plan = find_plan(store, reference)
    if not create and store.get_customer(customer) is None:
        raise CustomerNotFound(
            f"no customer {customer!r}: add it with `payoff customers add {customer}` "
            "(or subscribe with --create), or check the id in `payoff customers list`"
        )
    check_not_finalized(store, customer, starts)
    start_us = day_start_us(starts)
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
    check_not_finalized(store, customer, ends)
    if not store.end_subscription(customer, day_start_us(ends), now_us()):
        raise BillingError(f"{customer} has no subscription running on {ends}")
