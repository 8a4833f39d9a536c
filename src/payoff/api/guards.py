"""Two guards in front of every route, as plain ASGI middleware.

RequestGuard: FastAPI reads and parses a body before any dependency (the key check
included) runs, so without this guard a request with no key could make the server hold
gigabytes. Here a request's key is checked before its body is read, and so is the scope
its route needs; then its body is read up to the limit of its path (413 beyond it: at once
from a Content-Length, else as soon as the bytes counted pass it) and within the body
timeout (408), and handed to the app whole. The body of a request whose key is refused is
never kept: it is drained (each chunk dropped as it arrives) for up to REFUSED_DRAIN_S, then
answered 401 (403 for a scope), so that the client, still sending, reads the answer; a
refusal that leaves a body unread (a slower client) closes the connection. A middleware
answers by itself: it runs outside the app's exception handlers, so it draws the answer
from the error's type as they do.

AllowHeader: Starlette answers 405 from the first route whose path matches, so a path
served by two routes (GET and POST /v1/plans) would list one method only. This lists the
methods of every route on the path, as RFC 9110 asks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payoff.api.auth import PRINCIPAL
from payoff.api.errors import (
    BodyTimeout,
    BodyTooLarge,
    BodyUnreadable,
    detail_of,
    headers_of,
    status_of,
)
from payoff.core.errors import PayoffError
from payoff.service.access import Principal

SMALL_BODY_BYTES = 64 * 1024
"""The bound for requests whose body is a few fields (customers, keys, invoice runs...)."""
REFUSED_DRAIN_S = 2.0
"""How long the body of a request refused for its key is drained before the connection is
closed instead: a client sending at loopback or LAN speed is done well within it."""
NO_BODY_METHODS = ("GET", "HEAD", "OPTIONS")
"""Requests whose body, if any, no route reads: they pass unguarded."""


async def _refuse(send: Send, error: PayoffError, *, close: bool) -> None:
    """Answer `error`; with `close`, close the connection too (a body is left unread)."""
    body = msgspec.json.encode({"detail": detail_of(error)})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *(
            (name.lower().encode(), value.encode())
            for name, value in (headers_of(error) or {}).items()
        ),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status_of(error), "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _has_body(headers: dict[bytes, bytes]) -> bool:
    return b"transfer-encoding" in headers or headers.get(b"content-length", b"0") != b"0"


async def _receive_body(receive: Receive, limit: int, *, keep: bool) -> bytes:
    """The whole body, refused as soon as it passes `limit` bytes or the client leaves.

    With `keep` False its bytes are counted and dropped as they arrive, and b"" returned.
    """
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":  # the client left mid-body
            raise BodyUnreadable("the client disconnected before the body was complete")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body larger than {limit} bytes, the most accepted")
        if keep:
            chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


class _Drained(Exception):
    """A refusal answered once the body was received and dropped: the connection can stay."""

    def __init__(self, error: PayoffError) -> None:
        self.error = error


class RequestGuard:
    def __init__(
        self,
        app: ASGIApp,
        authenticate: Callable[[str], Principal],
        authorize: Callable[[Scope, Principal], None],
        limit_for: Callable[[str], int],
        body_timeout_s: float,
    ) -> None:
        self.app = app
        self.authenticate = authenticate
        self.authorize = authorize
        self.limit_for = limit_for
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in NO_BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not _has_body(headers):  # nothing to read: the route checks the key, as for a GET
            await self.app(scope, receive, send)
            return
        try:
            body = await self._checked_body(scope, receive, headers)
        except _Drained as drained:
            await _refuse(send, drained.error, close=False)
            return
        except PayoffError as error:
            await _refuse(send, error, close=True)
            return
        unread = [body]
        del body  # from here the app holds the only reference, and may drop it when done

        async def replay() -> Message:
            if unread:
                return {"type": "http.request", "body": unread.pop(), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _checked_body(
        self, scope: Scope, receive: Receive, headers: dict[bytes, bytes]
    ) -> bytes:
        """The key first, then the body within its bounds of size and time."""
        limit = self.limit_for(scope["path"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(f"body of {int(declared)} bytes; at most {limit} accepted")
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        try:
            principal = self.authenticate(authorization)
            self.authorize(scope, principal)
        except PayoffError as refused:
            # The body is not kept, but drained, so that a client still sending it reads the
            # answer, not a reset connection; for REFUSED_DRAIN_S at most, so that a client
            # with no key trickling a body holds a connection no longer than that.
            try:
                async with asyncio.timeout(REFUSED_DRAIN_S):
                    await _receive_body(receive, limit, keep=False)
            except (TimeoutError, PayoffError):
                raise refused from None  # answered, and the connection closed
            raise _Drained(refused) from None
        scope.setdefault("state", {})[PRINCIPAL] = principal
        return await self._receive(receive, limit, keep=True)

    async def _receive(self, receive: Receive, limit: int, *, keep: bool) -> bytes:
        try:
            async with asyncio.timeout(self.body_timeout_s):
                return await _receive_body(receive, limit, keep=keep)
        except TimeoutError:
            raise BodyTimeout(f"the body did not arrive within {self.body_timeout_s:g} s") from None


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
