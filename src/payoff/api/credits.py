"""Prepaid credits over HTTP: grant to a wallet (admin), read its balance and its ledger
(admin, or a customer key its own); hold reservations against it and settle them (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query

from payoff.api.auth import Admin, Reader, StoreDep, not_found_unless
from payoff.api.body import BoundedJsonRoute
from payoff.api.config import DEFAULT_PAGE, MAX_PAGE
from payoff.api.models import ERRORS, Page
from payoff.api.pages import page
from payoff.core.credits import DEFAULT_PRIORITY, MAX_PRIORITY
from payoff.core.reservations import DEFAULT_EXPIRES_IN_S, MAX_EXPIRES_IN_S
from payoff.service import balances, credits, reservations
from payoff.service.access import CustomerNotFound
from payoff.service.reservations import ReservationNotFound

router = APIRouter(prefix="/v1", responses=ERRORS, route_class=BoundedJsonRoute)
Moment = Annotated[
    str | None,
    Body(max_length=40, description="A day (YYYY-MM-DD, its first instant UTC) or RFC 3339 UTC"),
]


@router.post("/customers/{customer}/credits", summary="Grant credit to a customer's wallet")
def grant_credits(
    store: StoreDep,
    customer: str,
    _: Admin,
    amount: Annotated[str, Body(min_length=1, max_length=40, description="Decimal, exact")],
    id: Annotated[str | None, Body(min_length=1, max_length=255)] = None,
    currency: Annotated[str | None, Body(pattern=r"^[A-Z]{3}$")] = None,
    priority: Annotated[int, Body(ge=1, le=MAX_PRIORITY, strict=True)] = DEFAULT_PRIORITY,
    promo: Annotated[bool, Body(strict=True)] = False,
    top_up: Annotated[bool, Body(strict=True)] = False,
    effective: Moment = None,
    expires: Moment = None,
) -> dict[str, Any]:
    """Sent twice with the same `id`, one grant; the same `id` with other terms is 409."""
    terms = credits.GrantTerms(
        grant_id=id,
        currency=currency,
        priority=priority,
        promo=promo,
        effective_at_us=None if effective is None else credits.moment_us(effective, "effective"),
        expires_at_us=None if expires is None else credits.moment_us(expires, "expires"),
        top_up=top_up,
    )
    return credits.entry_json(credits.grant_credits(store, customer, amount, terms))


@router.get("/customers/{customer}/credits/balance", summary="A wallet's balance")
def credit_balance(store: StoreDep, customer: str, caller: Reader) -> dict[str, str]:
    """`balance`, `pending` (granted, not yet effective) and `available`, as decimal strings."""
    not_found_unless(caller, customer, CustomerNotFound(f"no customer {customer!r}"))
    return credits.wallet_balance(store, customer)


@router.get(
    "/customers/{customer}/credits/ledger", response_model=Page, summary="A wallet's entries"
)
def credit_ledger(
    store: StoreDep,
    customer: str,
    caller: Reader,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> dict[str, Any]:
    """Oldest first, each entry with the balance after it."""
    not_found_unless(caller, customer, CustomerNotFound(f"no customer {customer!r}"))
    entries = credits.wallet_ledger(store, customer)
    return page(lambda offset, count: entries[offset : offset + count], cursor, limit)


@router.post(
    "/reservations",
    status_code=201,
    summary="Hold an amount of a customer's credit for a task",
    responses={409: {"description": "Not held: more than is available, or the task holds another"}},
)
def reserve(
    store: StoreDep,
    _: Admin,
    customer: Annotated[str, Body(min_length=1, max_length=255)],
    task: Annotated[str, Body(min_length=1, max_length=255)],
    amount: Annotated[str, Body(min_length=1, max_length=40, description="Decimal, exact")],
    expires_in_s: Annotated[
        int, Body(ge=1, le=MAX_EXPIRES_IN_S, strict=True)
    ] = DEFAULT_EXPIRES_IN_S,
) -> dict[str, Any]:
    """One reservation per task: sent again, the same one. Released at its expiry."""
    held, _created = reservations.reserve(store, customer, task, amount, expires_in_s)
    return held


@router.get("/reservations/{reservation_id}", summary="One reservation")
def show_reservation(store: StoreDep, reservation_id: str, caller: Reader) -> dict[str, Any]:
    found = reservations.get_reservation(store, reservation_id)
    missing = ReservationNotFound(f"no reservation {reservation_id!r}")
    not_found_unless(caller, found["customer"], missing)
    return found


@router.post("/reservations/{reservation_id}/settle", summary="Settle with the actual cost")
def settle_reservation(
    store: StoreDep,
    reservation_id: str,
    _: Admin,
    cost: Annotated[str, Body(embed=True, min_length=1, max_length=40)],
) -> dict[str, Any]:
    """The task ended: its actual cost closes the reservation (once)."""
    return reservations.settle(store, reservation_id, cost)


@router.get("/customers/{customer}/balance", summary="Credit available less the period's spend")
def live_balance(store: StoreDep, customer: str, caller: Reader) -> dict[str, str | bool | None]:
    """The open period's usage rated so far at the customer's plan (before tax), taken
    from the credit available: `balance`; `spend` null when the plan's currency differs
    from the wallet's."""
    not_found_unless(caller, customer, CustomerNotFound(f"no customer {customer!r}"))
    return balances.live_balance(store, customer)


@router.post("/customers/{customer}/limits", summary="Set a customer's spend limits")
def set_limits(
    store: StoreDep,
    customer: str,
    _: Admin,
    soft: Annotated[str | None, Body(min_length=1, max_length=40)] = None,
    hard: Annotated[str | None, Body(min_length=1, max_length=40)] = None,
) -> dict[str, Any]:
    """On the period's spend so far plus what reservations hold: past `soft` a reservation
    is held and says so (`over_soft_limit`), past `hard` it is refused (409)."""
    return reservations.set_spend_limit(store, customer, soft, hard)
