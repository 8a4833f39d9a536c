"""Reading a request body, gzip included.

The body as sent is bounded by the BodyLimit middleware (payoff.api.guards) before any
route runs. OTLP exporters (the OpenTelemetry Collector among them) send gzip bodies by
default; the same bound applies once inflated, so a small compressed body cannot inflate
into gigabytes.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from payoff.api.errors import BodyTooLarge, BodyUnreadable, EncodingUnsupported
from payoff.nesting import deep_field, too_deep, too_deep_reason

GZIP_WINDOW = 16 + zlib.MAX_WBITS


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The body, inflated when gzip; `limit_bytes` bounds the inflated size."""
    body = await request.body()
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding == "gzip":
        return _gunzip(body, limit_bytes)
    if encoding not in ("identity", ""):
        raise EncodingUnsupported(f"content-encoding {encoding!r}: only gzip is understood")
    return body


def _gunzip(body: bytes, limit_bytes: int) -> bytes:
    """Inflate every member of a gzip body (as `gunzip` does), within the limit."""
    parts, size, rest = [], 0, body
    while rest:
        inflater = zlib.decompressobj(GZIP_WINDOW)
        try:
            part = inflater.decompress(rest, limit_bytes - size + 1)
        except zlib.error as exc:
            raise BodyUnreadable(f"body is not valid gzip: {exc}") from None
        size += len(part)
        if size > limit_bytes or inflater.unconsumed_tail:
            raise BodyTooLarge(f"body inflates beyond {limit_bytes} bytes, the most accepted")
        if not inflater.eof:
            raise BodyUnreadable("body is not valid gzip: the gzip stream is truncated")
        parts.append(part)
        rest = inflater.unused_data
    return b"".join(parts)


class BoundedJsonRoute(APIRoute):
    """A route whose body FastAPI decodes into its parameters: the body's nesting is measured
    first (`payoff.nesting`), so that JSON too deep to decode is a 400 naming the field, not
    the decoder's exception. Routes that read their body themselves measure it as they read."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def bounded(request: Request) -> Response:
            body = await request.body()  # kept by the request: FastAPI reads it from there
            if too_deep(body):
                field = deep_field(body)
                where = f"field `{field}` " if field else ""
                raise BodyUnreadable(f"body {where}{too_deep_reason()}")
            return await handle(request)

        return bounded
