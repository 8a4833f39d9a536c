"""The FastAPI application: one ledger, one catalog and one writer thread per process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from payoff import __version__
from payoff.api import billing, credits, docs_page, keys, metrics, reads, records
from payoff.api.auth import authenticate, route_authorizer
from payoff.api.billing import MAX_PLAN_BYTES
from payoff.api.config import ServerConfig
from payoff.api.errors import payoff_error_response, validation_error_response
from payoff.api.guards import SMALL_BODY_BYTES, AllowHeader, RequestGuard
from payoff.api.metrics import Timing
from payoff.api.workers import follow_supervisor
from payoff.catalog import Catalog
from payoff.core.errors import PayoffError
from payoff.service.access import KeyCache
from payoff.service.clock import now_us
from payoff.service.ingest import Builder, default_workers
from payoff.service.metrics import Metrics
from payoff.service.otlp import Receiver
from payoff.service.writer import LedgerWriter
from payoff.store import open_store

SWEEP_FRACTION = 4
MAX_SWEEP_INTERVAL_S = 60
SETTLE_FRACTION = 4
MIN_SETTLE_INTERVAL_S = 0.05

logger = logging.getLogger("payoff.otlp")

SUMMARY = "Meter AI work in tokens, visible and hidden; cost it exactly; price it by outcomes."


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open what the routes share, from `app.state.config`, and close it at shutdown."""
    config: ServerConfig = app.state.config
    store = open_store(config.db, busy_timeout_s=config.busy_timeout_s)
    app.state.store = store
    app.state.keys = KeyCache()
    app.state.catalog = catalog = Catalog.from_file(config.prices)
    app.state.writer = LedgerWriter(store)
    app.state.receiver = Receiver(
        store, catalog, config.idle_timeout_s, app.state.metrics, settle_s=config.settle_s
    )
    workers = default_workers() if config.builders is None else config.builders
    app.state.builder = Builder(catalog, workers) if workers else None
    if app.state.builder is not None:  # start it now, not on the first large request
        await app.state.builder.build(None, [])
    loops = [asyncio.create_task(_sweep(app.state.writer, app.state.receiver))]
    if config.settle_s > 0:
        loops.append(asyncio.create_task(_settle(app.state.writer, app.state.receiver)))
    try:
        yield
    finally:
        for loop in loops:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        app.state.writer.close()
        if app.state.builder is not None:
            app.state.builder.shutdown(cancel_futures=True)
        store.close()


async def _sweep(writer: LedgerWriter, receiver: Receiver) -> None:
    """Judge quiet traces and close quiet conversations, every SWEEP_FRACTION of the idle
    timeout (at most every MAX_SWEEP_INTERVAL_S): a conversation closes at most that late."""
    interval = min(MAX_SWEEP_INTERVAL_S, receiver.idle_timeout_s / SWEEP_FRACTION)
    while True:
        await asyncio.sleep(interval)
        try:
            await asyncio.wrap_future(writer.call(lambda: receiver.sweep(now_us), wait=False))
        except Exception:  # a failed sweep is retried at the next one; the server goes on
            logger.exception("sweeping quiet OpenTelemetry traces failed")


async def _settle(writer: LedgerWriter, receiver: Receiver) -> None:
    """Judge the traces that have settled, every SETTLE_FRACTION of the settle time: a run is
    judged at most that late after its settle time."""
    interval = max(MIN_SETTLE_INTERVAL_S, receiver.settle_s / SETTLE_FRACTION)
    behind = False
    while True:
        if not behind:  # a settlement that left traces for the next goes on at once
            await asyncio.sleep(interval)
        behind = False
        try:
            call = writer.call(lambda: receiver.settle(now_us), wait=False)
            behind = (await asyncio.wrap_future(call)).behind
        except Exception:  # retried next time; Receiver.settle passes over what keeps failing
            logger.exception("judging settled OpenTelemetry traces failed")


def create_app(config: ServerConfig) -> FastAPI:
    app = FastAPI(
        title="payoff",
        version=__version__,
        summary=SUMMARY,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's pages load scripts from a CDN; /docs below needs none
        redoc_url=None,
        openapi_url=None,  # served below: the reference is public, the API behind it is not
    )
    app.state.config = config
    app.state.metrics = Metrics()
    app.add_exception_handler(PayoffError, payoff_error_response)
    app.add_exception_handler(RequestValidationError, validation_error_response)

    @app.get("/healthz", summary="Liveness: no key needed")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # No key for the reference: it says how to call the API, and holds no ledger data.
    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_page.render(app.openapi()))

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    routers = [module.router for module in (records, reads, billing, credits, keys, metrics)]
    for router in routers:
        app.include_router(router)
    every_route = [*app.routes, *(route for router in routers for route in router.routes)]
    app.add_middleware(AllowHeader, routes=lambda: every_route)
    app.add_middleware(
        RequestGuard,
        authenticate=lambda header: authenticate(app.state, header),
        authorize=route_authorizer(every_route),
        limit_for=lambda path: _body_limit(config, path),
        body_timeout_s=config.body_timeout_s,
    )
    # Outermost, so that refusals by the guard (401, 408, 413) are timed and counted too.
    app.add_middleware(Timing, metrics=app.state.metrics)
    return app


def _body_limit(config: ServerConfig, path: str) -> int:
    if path in ("/v1/events", "/v1/traces"):
        return config.max_body_bytes
    if path == "/v1/plans":
        return MAX_PLAN_BYTES
    return SMALL_BODY_BYTES


def create_app_from_env() -> FastAPI:
    """For uvicorn's worker processes, which import the app by name: settings from PAYOFF_*.

    A worker of `payoff serve --workers N` also ends when its supervisor does.
    """
    follow_supervisor()
    return create_app(ServerConfig.from_env())
