"""A correct `Allow` header on 405 answers.

Starlette answers 405 from the first route whose path matches, so a path served by two
routes (GET and POST /v1/plans) would list only one method. This middleware lists the
methods of every route on the path, as RFC 9110 asks.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AllowHeader:
    def __init__(self, app: ASGIApp, routes: Any) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = set()
                for route in self.routes():
                    match, _ = route.matches({**scope, "method": "GET"})
                    if match != Match.NONE and getattr(route, "methods", None):
                        methods |= route.methods
                headers = [(k, v) for k, v in message["headers"] if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(sorted(methods)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)
