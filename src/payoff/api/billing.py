"""Billing over HTTP: customers, webhook secrets, plans, subscriptions and invoices."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.concurrency import run_in_threadpool

from payoff.api import examples
from payoff.api.auth import Admin, Reader, StoreDep, not_found_unless, readable_customer
from payoff.api.body import BoundedJsonRoute, read_body
from payoff.api.config import DEFAULT_PAGE, MAX_PAGE
from payoff.api.errors import ActionNotFound, BodyUnreadable
from payoff.api.models import ERRORS, Page, SecretRotated
from payoff.api.pages import page
from payoff.api.strict import DayText, TimeText
from payoff.core.invoicing import INVOICE_ACTIONS
from payoff.core.periods import to_us
from payoff.core.seats import MAX_SEATS
from payoff.service import access, invoices, plans
from payoff.service import seats as seat_service
from payoff.service.plans import BillingError, InvoiceNotFound

router = APIRouter(prefix="/v1", responses=ERRORS, route_class=BoundedJsonRoute)
Id = Annotated[str, Body(min_length=1, max_length=255)]
PLAN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}
MAX_PLAN_BYTES = 256 * 1024


Detail = Annotated[str | None, Body(max_length=1000)]


@router.post("/customers", summary="Add a customer, or update its name and contact details")
def add_customer(
    store: StoreDep,
    _: Admin,
    id: Id,
    name: Detail = None,
    address: Detail = None,
    email: Detail = None,
    tax_id: Detail = None,
) -> dict[str, Any]:
    """Details not given are kept; they are printed on the customer's invoices."""
    created = plans.add_customer(store, id, name, address=address, email=email, tax_id=tax_id)
    details = {"name": name, "address": address, "email": email, "tax_id": tax_id}
    return {"id": id, **details, "created": created}


@router.post(
    "/customers/{customer}/secret",
    response_model=SecretRotated,
    summary="Rotate a customer's webhook secret (shown once)",
)
def rotate_secret(
    store: StoreDep,
    customer: str,
    _: Admin,
    previous_valid_for_s: Annotated[
        int, Body(embed=True, ge=0, le=access.MAX_SECRET_OVERLAP_S, strict=True)
    ] = access.DEFAULT_SECRET_OVERLAP_S,
) -> dict[str, Any]:
    secret = access.rotate_secret(store, customer, previous_valid_for_s)
    return {"customer": customer, "secret": secret, "previous_valid_for_s": previous_valid_for_s}


@router.get("/plans", summary="Every plan version")
def list_plans(store: StoreDep, _: Admin) -> list[dict[str, Any]]:
    return plans.list_plans(store)


@router.post("/plans", openapi_extra=PLAN_BODY, summary="Apply a plan (YAML or JSON)")
async def apply_plan(store: StoreDep, _: Admin, request: Request) -> dict[str, Any]:
    """The plan file `payoff plans apply` reads (JSON is YAML too); applying it twice is a no-op."""
    body = await read_body(request, MAX_PLAN_BYTES)
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise BodyUnreadable("a plan is UTF-8 text (YAML or JSON)") from None
    plan, created, warnings = await run_in_threadpool(
        plans.apply_plan_text, store, text, "request body"
    )
    return {"id": plan.id, "version": plan.version, "created": created, "warnings": warnings}


@router.post("/subscriptions", summary="Put a customer on a plan version from a day")
def subscribe(
    store: StoreDep,
    _: Admin,
    customer: Id,
    plan: Annotated[str, Body(description="PLAN_ID or PLAN_ID@VERSION")],
    starts: Annotated[DayText, Body(alias="from", description="First day, YYYY-MM-DD (UTC)")],
) -> dict[str, Any]:
    chosen = plans.subscribe(store, customer, plan, starts)
    return {"customer": customer, "plan": chosen.id, "version": chosen.version, "from": str(starts)}


@router.post("/subscriptions/end", summary="End a customer's subscription from a day")
def unsubscribe(
    store: StoreDep,
    _: Admin,
    customer: Id,
    ends: Annotated[DayText, Body(alias="from", description="First day not billed")],
) -> dict[str, Any]:
    plans.unsubscribe(store, customer, ends)
    return {"customer": customer, "ends": str(ends)}


@router.post("/seats", summary="Set a customer's seat count from a day")
def set_seats(
    store: StoreDep,
    _: Admin,
    customer: Id,
    seats: Annotated[int, Body(ge=0, le=MAX_SEATS, strict=True)],
    starts: Annotated[DayText, Body(alias="from", description="First day, YYYY-MM-DD (UTC)")],
) -> dict[str, Any]:
    """Per-seat charges bill each day at the count in effect that day; setting the same
    count for the same day again changes nothing (`changed` is false)."""
    changed = seat_service.set_seats(store, customer, seats, starts)
    return {"customer": customer, "seats": seats, "from": str(starts), "changed": changed}


@router.get("/seats/{customer}", summary="A customer's seat counts, in the order recorded")
def list_seats(store: StoreDep, customer: str, _: Admin) -> list[dict[str, Any]]:
    return seat_service.list_seats(store, customer)


@router.post(
    "/invoice-runs",
    summary="Draft invoices for a period from the ledger",
    openapi_extra={"requestBody": {"content": examples.INVOICE_RUN}},
)
async def run_invoices(
    request: Request,
    store: StoreDep,
    _: Admin,
    period: Annotated[str, Body(pattern=r"^\d{4}-\d{2}$")],
    customer: Annotated[str | None, Body(max_length=255)] = None,
    as_of: Annotated[TimeText | None, Body(description="RFC 3339; default now")] = None,
) -> list[dict[str, Any]]:
    if as_of is not None and as_of.tzinfo is None:
        raise BillingError("as_of needs a time-zone offset (e.g. Z)")
    as_of_us = None if as_of is None else to_us(as_of)
    overrides = request.app.state.catalog.overrides
    return await run_in_threadpool(
        invoices.run_invoices, store, period, customer, as_of_us, overrides
    )


@router.get("/invoices", response_model=Page, summary="Invoices, oldest periods first")
def list_invoices(
    store: StoreDep,
    caller: Reader,
    customer: str | None = None,
    period: Annotated[str | None, Query(pattern=r"^\d{4}-\d{2}$")] = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = DEFAULT_PAGE,
) -> dict[str, Any]:
    only = readable_customer(caller, customer)
    return page(
        lambda offset, count: invoices.list_invoices(
            store, only, period, status, limit=count, offset=offset
        ),
        cursor,
        limit,
    )


@router.get("/invoices/{invoice_id}", summary="One invoice, with its credit notes")
def show_invoice(store: StoreDep, invoice_id: str, caller: Reader) -> dict[str, Any]:
    document = invoices.invoice_document(store, invoice_id)
    not_found_unless(caller, document["customer"], InvoiceNotFound(f"no invoice {invoice_id!r}"))
    return document


@router.post("/invoices/{invoice_id}/{action}", summary="finalize, pay or void an invoice")
def act_on_invoice(store: StoreDep, invoice_id: str, action: str, _: Admin) -> dict[str, Any]:
    if action not in INVOICE_ACTIONS:
        raise ActionNotFound(f"no invoice action {action!r}; use {', '.join(INVOICE_ACTIONS)}")
    return invoices.act_on_invoice(store, invoice_id, action)
