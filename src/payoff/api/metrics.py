"""GET /metrics: the server's counters and latencies, and the middleware that times requests.

No key is asked, as for /healthz: the page holds counts and latencies of this process, and
how many OpenTelemetry spans wait to be judged, never ledger contents.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payoff.service.metrics import CONTENT_TYPE, Metrics
from payoff.service.otlp import Receiver

TIMED_ROUTES = frozenset({"/v1/events", "/v1/traces", "/v1/attestations"})
"""Routes whose latency is kept by route; every other request counts under `other`."""

router = APIRouter()


@router.get(
    "/metrics",
    summary="Counters and latencies (Prometheus text format): no key needed",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(request: Request) -> Response:
    counted: Metrics = request.app.state.metrics
    receiver: Receiver = request.app.state.receiver
    waiting = request.app.state.store.pending_spans()
    settled = receiver.settled_through.last_us if receiver.settle_s > 0 else None
    return Response(counted.render(waiting, settled), media_type=CONTENT_TYPE)


class Timing:
    """Counts each HTTP request by route and status, with the time it took to answer."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_timed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_timed)
        finally:
            path = scope["path"]
            route = path if path in TIMED_ROUTES else "other"
            self.metrics.observe(route, status, time.perf_counter() - started)
