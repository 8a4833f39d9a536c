"""API keys over HTTP (admin only): create (shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from payoff.api.auth import Admin, StoreDep
from payoff.api.body import BoundedJsonRoute
from payoff.api.models import ERRORS, KeyCreated
from payoff.service import access

router = APIRouter(prefix="/v1", responses=ERRORS, route_class=BoundedJsonRoute)


@router.post("/keys", response_model=KeyCreated, summary="Create a key (the key is shown once)")
def create_key(
    store: StoreDep,
    _: Admin,
    scope: Annotated[str, Body(description="admin, ingest or customer:ID", max_length=300)],
    name: Annotated[str | None, Body(max_length=1000)] = None,
) -> dict[str, Any]:
    stored, key = access.create_key(store, scope, name)
    return {"id": stored.id, "scope": stored.scope, "name": stored.name, "key": key}


@router.get("/keys", summary="Every key: id, scope, name, created, revoked (never the key)")
def list_keys(store: StoreDep, _: Admin) -> list[dict[str, Any]]:
    return [access.key_json(key) for key in access.list_keys(store)]


@router.delete("/keys/{key_id}", summary="Revoke a key; it stops working at once")
def revoke_key(store: StoreDep, key_id: str, _: Admin, request: Request) -> dict[str, Any]:
    access.revoke_key(store, key_id)
    request.app.state.keys.clear()
    return {"id": key_id, "revoked": True}
