"""Bearer keys and scopes, as FastAPI dependencies.

KeyRefused (401) when the key is missing, unknown or revoked; ScopeRefused (403) when the
key's scope does not allow the action; a customer key asking for another customer's data
gets NotFound (404), the answer it would get if that data did not exist, so ids cannot be
probed. `payoff.api.errors` turns each into its status.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.routing import Match
from starlette.types import Scope

from payoff.api.errors import KeyRefused, ScopeRefused
from payoff.core.errors import NotFound
from payoff.service.access import ADMIN, INGEST, CustomerNotFound, KeyCache, Principal
from payoff.store.protocol import Store

BEARER = "bearer "
PRINCIPAL = "payoff.principal"
"""Where the request's scope state keeps the principal its key was found to be."""


# The dependencies are coroutines: FastAPI runs plain functions on its thread pool, and two
# thread hops per request cost more than the one indexed key lookup they make.
async def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def authenticate(state: Any, header: str) -> Principal:
    """The principal of an `Authorization` header's bearer key; KeyRefused without one.

    `state` is the application's: its key cache and store.
    """
    if not header.lower().startswith(BEARER):
        raise KeyRefused("missing bearer key: send `Authorization: Bearer <key>`")
    keys: KeyCache = state.keys
    found = keys.principal(state.store, header[len(BEARER) :].strip())
    if found is None:
        raise KeyRefused("unknown or revoked key")
    return found


async def principal(request: Request) -> Principal:
    # A request with a body had its key checked before the body was read (api.guards).
    checked: Principal | None = request.scope.get("state", {}).get(PRINCIPAL)
    if checked is not None:
        return checked
    return authenticate(request.app.state, request.headers.get("authorization", ""))


Caller = Annotated[Principal, Depends(principal)]
StoreDep = Annotated[Store, Depends(store_of)]


def needs_admin(caller: Principal) -> None:
    if not caller.is_admin:
        raise ScopeRefused(f"this needs an admin key; this key's scope is {caller.scope}")


def needs_writer(caller: Principal) -> None:
    if caller.scope not in (ADMIN, INGEST):
        raise ScopeRefused(
            f"writing records needs an ingest or admin key; this key's scope is {caller.scope}"
        )


def needs_sender(caller: Principal) -> None:
    """Ingest and admin keys send records; a customer key sends signals (checked on the
    records: `http_records.check_customer_records`)."""
    if not caller.is_customer:
        needs_writer(caller)


def needs_reader(caller: Principal) -> None:
    """Admin or customer keys; ingest keys only write."""
    if caller.scope == INGEST:
        raise ScopeRefused("an ingest key may only write records")


async def admin(caller: Caller) -> Principal:
    needs_admin(caller)
    return caller


async def writer(caller: Caller) -> Principal:
    needs_writer(caller)
    return caller


async def sender(caller: Caller) -> Principal:
    needs_sender(caller)
    return caller


async def reader(caller: Caller) -> Principal:
    needs_reader(caller)
    return caller


_CHECKS: dict[Callable[..., Any], Callable[[Principal], None]] = {
    admin: needs_admin,
    writer: needs_writer,
    sender: needs_sender,
    reader: needs_reader,
}


def scope_check_of(route: Any) -> Callable[[Principal], None] | None:
    """The scope check a route's dependencies make (admin, writer or reader), if any: the
    request guard makes it before reading a body, so that a key the route refuses is
    refused whatever the body holds."""
    pending = list(getattr(getattr(route, "dependant", None), "dependencies", ()))
    while pending:
        dependant = pending.pop()
        check = _CHECKS.get(dependant.call) if dependant.call is not None else None
        if check is not None:
            return check
        pending.extend(dependant.dependencies)
    return None


def route_authorizer(routes: Sequence[Any]) -> Callable[[Scope, Principal], None]:
    """A check of a request against the scope its route needs (ScopeRefused), for a guard
    that runs before routing. A request no route takes fully passes: it is answered 404 or
    405 after."""
    # Only routes with an endpoint of their own: an included router matches every path of
    # its routes, and has no dependencies to read.
    checks = [(route, scope_check_of(route)) for route in routes if hasattr(route, "dependant")]

    def authorize(scope: Scope, caller: Principal) -> None:
        for route, check in checks:
            if route.matches(scope)[0] is Match.FULL:
                if check is not None:
                    check(caller)
                return

    return authorize


Admin = Annotated[Principal, Depends(admin)]
Writer = Annotated[Principal, Depends(writer)]
Sender = Annotated[Principal, Depends(sender)]
Reader = Annotated[Principal, Depends(reader)]


def readable_customer(caller: Principal, customer: str | None) -> str | None:
    """The customer filter a caller may use: its own for customer keys, any for admin."""
    if caller.is_admin:
        return customer
    if customer is not None and customer != caller.customer:
        raise CustomerNotFound(f"no customer {customer!r}")
    return caller.customer


def not_found_unless(caller: Principal, customer: str, missing: NotFound) -> None:
    """Raise `missing` unless the caller may read the customer's data: what is not the
    caller's to see is answered as if it did not exist."""
    if not caller.may_read(customer):
        raise missing
