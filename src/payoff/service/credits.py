"""Credit use cases: grant and top up a wallet, roll unused credit over, read its balance and
its ledger. The rules are `core.credits`; every write computes its entries from the wallet
under the write lock (`CreditStore.write_credits`), so it is idempotent by entry id and
safe beside concurrent writers. Invoices draw credits down in `service.invoices`.

Amounts cross this module as decimal strings in the wallet's currency, exact to its minor
unit; inside they are integers of minor units.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from payoff.core.credits import (
    DEFAULT_PRIORITY,
    MAX_AMOUNT_MINOR,
    MAX_PRIORITY,
    CreditEntry,
    CreditError,
    balance_minor,
    expiries,
    format_minor,
    pending_minor,
    rollover,
)
from payoff.core.currency import minor_unit
from payoff.core.errors import PeriodError
from payoff.core.periods import iso_from_us, to_us, us_from_iso
from payoff.service.access import CustomerNotFound
from payoff.service.clock import now_us
from payoff.store.protocol import BillingStore, CreditStore


class WalletStore(BillingStore, CreditStore, Protocol):
    """Customers and their plans, beside their wallets."""


@dataclass(frozen=True)
class GrantTerms:
    """What a grant says beside its amount; `grant_id` makes it idempotent (a new one is
    made when None), `currency` defaults to the wallet's, else the customer's plan's."""

    grant_id: str | None = None
    currency: str | None = None
    priority: int = DEFAULT_PRIORITY
    promo: bool = False
    effective_at_us: int | None = None
    expires_at_us: int | None = None
    top_up: bool = False


def parse_amount_minor(text: str, currency: str, *, zero: bool = False) -> int:
    """A positive decimal string in `currency` (or zero, when `zero`), exact to its minor
    unit, as minor units."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise CreditError(f"amount {text!r} is not a decimal number") from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not zero):
        raise CreditError(f"amount {text!r} must be a positive decimal number")
    if amount > MAX_AMOUNT_MINOR:
        raise CreditError(f"amount {text!r} is more than one grant may hold")
    places = minor_unit(currency)
    exact = amount.quantize(Decimal(1).scaleb(-places))  # below the bound: never overflows
    if exact != amount:
        raise CreditError(f"amount {text!r} has more than {places} decimal places ({currency})")
    return int(exact.scaleb(places))


def grant_credits(store: WalletStore, customer: str, amount: str, terms: GrantTerms) -> CreditEntry:
    """Grant (or top up) credit to a customer's wallet: one entry, once per grant id."""
    if store.get_customer(customer) is None:
        raise CustomerNotFound(f"no customer {customer!r}: add it first (payoff customers add)")
    if not 1 <= terms.priority <= MAX_PRIORITY:
        raise CreditError(f"priority {terms.priority} is not between 1 and {MAX_PRIORITY}")
    at_us = now_us()
    currency = _currency(store, customer, terms.currency)
    amount_minor = parse_amount_minor(amount, currency)
    grant_id = terms.grant_id or f"cr_{uuid.uuid4().hex}"
    grant = CreditEntry(
        grant_id,
        customer,
        "top_up" if terms.top_up else "grant",
        grant_id,
        amount_minor,
        currency,
        terms.effective_at_us if terms.effective_at_us is not None else at_us,
        priority=terms.priority,
        promo=terms.promo,
        expires_at_us=terms.expires_at_us,
    )

    def write(entries: list[CreditEntry]) -> list[CreditEntry]:
        same = next((e for e in entries if e.id == grant_id), None)
        if same is not None and terms.effective_at_us is None:
            # Sent again: the instant it was first granted stands; other terms conflict.
            return [replace(grant, at_us=same.at_us)]
        if entries and entries[0].currency != currency:
            raise CreditError(f"the wallet of {customer} is in {entries[0].currency}")
        return [grant]

    store.write_credits(customer, write, at_us)
    stored = [e for e in store.credit_entries(customer) if e.id == grant_id]
    return stored[0]


def roll_over(
    store: WalletStore,
    customer: str,
    source: str,
    cap: str,
    expires_at_us: int | None,
    new_id: str | None = None,
) -> list[CreditEntry]:
    """Carry what is left of grant `source` into a new grant, at most `cap`, expiring at
    `expires_at_us`; the rest of the source is gone. Once per source grant."""
    at_us = now_us()
    currency = _currency(store, customer, None)
    cap_minor = parse_amount_minor(cap, currency, zero=True)
    carried_id = new_id or f"{source}:rolled"

    def write(entries: list[CreditEntry]) -> list[CreditEntry]:
        due = expiries(entries, at_us)
        return [
            *due,
            *rollover([*entries, *due], source, carried_id, cap_minor, at_us, expires_at_us),
        ]

    return store.write_credits(customer, write, at_us)


def expire_credits(store: CreditStore, customer: str) -> list[CreditEntry]:
    """Write the expiry entries that have come due, each at its grant's expiry instant."""
    at_us = now_us()
    return store.write_credits(customer, lambda entries: expiries(entries, at_us), at_us)


def wallet_balance(store: WalletStore, customer: str) -> dict[str, str]:
    """The wallet now: `balance` (every entry, expiries due counted), `pending` (granted
    credit not yet effective) and `available` (what an invoice could draw now)."""
    at_us = now_us()
    entries = store.credit_entries(customer)
    if not entries and store.get_customer(customer) is None:
        raise CustomerNotFound(f"no customer {customer!r}")
    currency = _currency(store, customer, None) if not entries else entries[0].currency
    entries = [*entries, *expiries(entries, at_us)]
    total, pending = balance_minor(entries), pending_minor(entries, at_us)
    return {
        "customer": customer,
        "currency": currency,
        "balance": format_minor(total, currency),
        "pending": format_minor(pending, currency),
        "available": format_minor(total - pending, currency),
    }


def wallet_ledger(store: WalletStore, customer: str) -> list[dict[str, Any]]:
    """The wallet's entries, oldest first, each with the balance after it."""
    if store.get_customer(customer) is None:
        raise CustomerNotFound(f"no customer {customer!r}")
    running, out = 0, []
    for entry in store.credit_entries(customer):
        running += entry.amount_minor
        out.append(entry_json(entry) | {"balance": format_minor(running, entry.currency)})
    return out


def entry_json(entry: CreditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "grant": entry.grant,
        "amount": format_minor(entry.amount_minor, entry.currency),
        "currency": entry.currency,
        "at": iso_from_us(entry.at_us),
        "priority": entry.priority,
        "promo": entry.promo,
        "expires_at": None if entry.expires_at_us is None else iso_from_us(entry.expires_at_us),
        "invoice": entry.invoice,
        "note": entry.note,
    }


def moment_us(text: str, what: str) -> int:
    """A day (`YYYY-MM-DD`, its first instant in UTC) or an RFC 3339 UTC time."""
    try:
        if len(text) == 10:
            return to_us(dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC))
        return us_from_iso(text)
    except (ValueError, PeriodError):
        raise CreditError(
            f"{what} {text!r} is not a day (YYYY-MM-DD) nor a UTC time (2026-12-01T00:00:00Z)"
        ) from None


def wallet_currency(store: WalletStore, customer: str) -> str:
    """The wallet's currency, else the customer's latest plan's."""
    if store.get_customer(customer) is None:
        raise CustomerNotFound(f"no customer {customer!r}")
    return _currency(store, customer, None)


def _currency(store: WalletStore, customer: str, asked: str | None) -> str:
    """The currency asked for, else the wallet's, else the customer's latest plan's."""
    if asked is not None:
        try:
            minor_unit(asked)
        except ValueError as exc:
            raise CreditError(str(exc)) from None
        return asked
    entries = store.credit_entries(customer)
    if entries:
        return entries[0].currency
    subs = store.subscriptions(0, 2**62, customer)
    if subs:
        latest = max(subs, key=lambda sub: sub.starts_at_us)
        plan = store.get_plan(latest.plan_id, latest.plan_version)
        if plan is not None:
            return plan.currency
    raise CreditError(f"{customer} has no wallet nor plan yet: say the currency (--currency)")
