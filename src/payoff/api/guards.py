"""Two guards in front of every route, as plain ASGI middleware.

BodyLimit: FastAPI reads and parses a JSON body before any dependency (the key check
included) runs, so without a bound a request with no key could make the server hold
gigabytes. Every body is read here first, up to the limit of its path, and refused with
BodyTooLarge (413) beyond it. A middleware answers by itself: it runs outside the app's
exception handlers, so it draws the answer from the error's type as they do.

AllowHeader: Starlette answers 405 from the first route whose path matches, so a path
served by two routes (GET and POST /v1/plans) would list one method only. This lists the
methods of every route on the path, as RFC 9110 asks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payoff.api.errors import BodyTooLarge, BodyUnreadable, status_of
from payoff.core.errors import PayoffError

SMALL_BODY_BYTES = 64 * 1024
"""The bound for requests whose body is a few fields (customers, keys, invoice runs...)."""


async def _refuse(send: Send, error: PayoffError) -> None:
    body = msgspec.json.encode({"detail": str(error)})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status_of(error), "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    def __init__(self, app: ASGIApp, limit_for: Callable[[str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(
                send, BodyTooLarge(f"body of {int(declared)} bytes; at most {limit} accepted")
            )
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":  # the client left mid-body
                await _refuse(
                    send, BodyUnreadable("the client disconnected before the body was complete")
                )
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _refuse(
                    send, BodyTooLarge(f"body larger than {limit} bytes, the most accepted")
                )
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body, sent = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


class AllowHeader:
    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[Any]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods: set[str] = set()
                for route in self.routes():
                    match, _ = route.matches({**scope, "method": "GET"})
                    if match != Match.NONE and getattr(route, "methods", None):
                        methods |= route.methods
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(sorted(methods)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
