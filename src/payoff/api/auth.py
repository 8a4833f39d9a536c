"""Bearer keys and scopes, as FastAPI dependencies.

KeyRefused (401) when the key is missing, unknown or revoked; ScopeRefused (403) when the
key's scope does not allow the action; a customer key asking for another customer's data
gets NotFound (404), the answer it would get if that data did not exist, so ids cannot be
probed. `payoff.api.errors` turns each into its status.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

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


async def admin(caller: Caller) -> Principal:
    if not caller.is_admin:
        raise ScopeRefused(f"this needs an admin key; this key's scope is {caller.scope}")
    return caller


async def writer(caller: Caller) -> Principal:
    if caller.scope not in (ADMIN, INGEST):
        raise ScopeRefused(
            f"writing records needs an ingest or admin key; this key's scope is {caller.scope}"
        )
    return caller


async def reader(caller: Caller) -> Principal:
    """Admin or customer keys; ingest keys only write."""
    if caller.scope == INGEST:
        raise ScopeRefused("an ingest key may only write records")
    return caller


Admin = Annotated[Principal, Depends(admin)]
Writer = Annotated[Principal, Depends(writer)]
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
