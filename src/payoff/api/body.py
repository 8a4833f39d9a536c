"""Reading a request body, gzip and deflate included.

The body as sent is bounded in size and time by the RequestGuard middleware
(payoff.api.guards) before any route runs. OTLP exporters (the OpenTelemetry Collector
among them) send gzip bodies by default, and some HTTP clients deflate theirs; the same
bound applies once inflated, so a small compressed body cannot inflate into gigabytes.
Inflating takes time in proportion to what comes out (tens of milliseconds for the
default bound), so it runs on a worker thread, never on the event loop.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute

from payoff.api.errors import BodyTooLarge, BodyUnreadable, EncodingUnsupported
from payoff.nesting import deep_field, too_deep, too_deep_reason

GZIP_WINDOW = 16 + zlib.MAX_WBITS
ZLIB_WINDOW = zlib.MAX_WBITS
RAW_DEFLATE_WINDOW = -zlib.MAX_WBITS


async def read_body(request: Request, limit_bytes: int) -> bytes:
    """The body, inflated when gzip or deflate; `limit_bytes` bounds the inflated size.

    Read from the stream rather than `request.body()`, which would keep the body for as
    long as the request lives: the caller may drop it as soon as it has what it needs.
    """
    body = b"".join([chunk async for chunk in request.stream()])  # one chunk: not copied
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("identity", ""):
        return body
    inflate = INFLATERS.get(encoding)
    if inflate is None:
        raise EncodingUnsupported(
            f"content-encoding {encoding!r}: only gzip and deflate are understood"
        )
    return await run_in_threadpool(inflate, body, limit_bytes)


def _inflate_stream(
    name: str, data: bytes, window: int, room: int, limit_bytes: int
) -> tuple[bytes, bytes]:
    """One compressed stream of `data`: what it inflates to (at most `room` bytes of the
    body's `limit_bytes`), and the bytes that follow its end."""
    inflater = zlib.decompressobj(window)
    try:
        inflated = inflater.decompress(data, room + 1)
    except zlib.error as exc:
        # zlib says "Error -3 while decompressing data: incorrect header check": the words
        # after its code are what is wrong.
        raise BodyUnreadable(f"body is not valid {name}: {str(exc).rpartition(': ')[2]}") from None
    if len(inflated) > room or inflater.unconsumed_tail:
        raise BodyTooLarge(f"body inflates beyond {limit_bytes} bytes, the most accepted")
    if not inflater.eof:
        raise BodyUnreadable(f"body is not valid {name}: the {name} stream is truncated")
    return inflated, inflater.unused_data


def _gunzip(body: bytes, limit_bytes: int) -> bytes:
    """Inflate every member of a gzip body (as `gunzip` does), within the limit."""
    parts, size, rest = [], 0, body
    while rest:
        part, rest = _inflate_stream("gzip", rest, GZIP_WINDOW, limit_bytes - size, limit_bytes)
        size += len(part)
        parts.append(part)
    return b"".join(parts)


def _inflate(body: bytes, limit_bytes: int) -> bytes:
    """Inflate a deflate body, within the limit: zlib-wrapped as RFC 9110 says, or raw
    deflate as some clients send it (told apart by the zlib header's check bits)."""
    header = body[:2]
    wrapped = len(header) == 2 and header[0] & 0x0F == 8 and int.from_bytes(header) % 31 == 0
    window = ZLIB_WINDOW if wrapped else RAW_DEFLATE_WINDOW
    inflated, rest = _inflate_stream("deflate", body, window, limit_bytes, limit_bytes)
    if rest:
        raise BodyUnreadable("body is not valid deflate: bytes follow the end of its stream")
    return inflated


INFLATERS: dict[str, Callable[[bytes, int], bytes]] = {"gzip": _gunzip, "deflate": _inflate}
"""The content-encodings a request body may come in, and how each is undone."""


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
