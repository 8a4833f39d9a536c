"""uvicorn's HTTP protocol (httptools), with bounds on a request's headers and on connections.

uvicorn bounds the idle time between two requests of a connection (`timeout_keep_alive`),
and nothing before a request's headers are complete: a client that connects and sends its
headers a byte at a time, or never ends them, holds a connection (and whatever it sent)
for ever, and the headers grow without limit. Neither h11 nor httptools has a timeout of
its own, and an ASGI middleware runs only once the headers are complete, too late. So this
subclass of uvicorn's protocol (`payoff serve` runs it as `--http`) adds, per connection:

- a header deadline: the headers of each request must be complete within
  `header_timeout_s` of its first byte (of the connection, for the first request), or the
  server answers 408 and closes the connection;
- a header size bound: more than MAX_HEADER_BYTES before the headers end is 431, closed;
- a deadline for a body the application did not read (it answered first): uvicorn reads
  and drops the rest for as long as the client sends it; after the body timeout the
  connection is closed.

And it answers uvicorn's concurrency bound (`limit_concurrency`, `payoff serve
--max-connections`) as every other busy answer of the API: 503, a JSON detail and
`Retry-After`, where uvicorn's own answer is plain text without it.

The subclass uses uvicorn's parser callbacks (`on_message_begin`, `on_headers_complete`),
which are the protocol's interface to httptools; `tests/test_server_guards.py` runs it live.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import msgspec
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from payoff.api.config import ServerConfig
from payoff.api.errors import RETRY_AFTER_S

MAX_HEADER_BYTES = 64 * 1024
"""Bytes a request may send before its headers end (the request line included); browsers
and HTTP clients send under 8 KiB, proxies allow 8-64 KiB."""
PROTOCOL = "payoff.api.protocol:GuardedHttpProtocol"
"""What `payoff serve` passes to uvicorn as its HTTP protocol (an import string, so that
uvicorn's worker processes can import it by name)."""


def _answer(status: str, detail: str) -> bytes:
    """A whole HTTP answer that closes the connection, written before any app has run."""
    body = msgspec.json.encode({"detail": detail})
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


@functools.cache
def _settings() -> ServerConfig:
    """This process's timeouts: `payoff serve` hands them over as PAYOFF_HEADER_TIMEOUT and
    PAYOFF_BODY_TIMEOUT."""
    return ServerConfig.from_env()


@functools.cache
def _too_many_connections(limit: int) -> Any:
    """The ASGI app that answers a request beyond the connection bound: 503, as Busy is."""
    detail = f"busy: this server process serves {limit} connections at once; retry shortly"
    body = msgspec.json.encode({"detail": detail})
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", str(RETRY_AFTER_S).encode()),
        (b"connection", b"close"),
    ]

    async def answer(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return answer


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline, a header size bound, a deadline
    for a body left unread, and the connection bound answered as Busy."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The concurrency bound is checked below, to answer it as the API answers Busy.
        self.max_connections, self.limit_concurrency = self.limit_concurrency, None
        self.header_timeout_s = _settings().header_timeout_s
        self.body_timeout_s = _settings().body_timeout_s
        self._header_deadline: asyncio.TimerHandle | None = None
        self._header_bytes = 0
        self._unread_body_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_headers()
        self._end_unread_body()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and self.cycle.more_body and not self.transport.is_closing():
            # Answered before its body ended (a GET with a body, a refusal): uvicorn reads
            # the rest and drops it, for as long as the client sends; the body timeout
            # bounds that too, then the connection is closed.
            self._unread_body_deadline = self.loop.call_later(
                self.body_timeout_s, self.transport.close
            )

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._end_unread_body()

    def data_received(self, data: bytes) -> None:
        awaiting_headers = self._header_deadline is not None
        if awaiting_headers:
            self._header_bytes += len(data)
        super().data_received(data)
        still_awaiting = awaiting_headers and self._header_deadline is not None
        if still_awaiting and self._header_bytes > MAX_HEADER_BYTES:
            self._refuse(
                _answer(
                    "431 Request Header Fields Too Large",
                    f"the request line and headers exceed {MAX_HEADER_BYTES} bytes",
                )
            )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_deadline is None:  # a later request of a kept-alive connection
            self._start_headers()

    def on_headers_complete(self) -> None:
        self._end_headers()
        limit = self.max_connections
        # This connection is among `connections`; this request is not yet among `tasks`.
        if limit is None or (len(self.connections) <= limit and len(self.tasks) < limit):
            super().on_headers_complete()
            return
        app, self.app = self.app, _too_many_connections(limit)
        try:
            super().on_headers_complete()
        finally:
            self.app = app

    def _start_headers(self) -> None:
        self._header_bytes = 0
        self._header_deadline = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _end_headers(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _end_unread_body(self) -> None:
        if self._unread_body_deadline is not None:
            self._unread_body_deadline.cancel()
            self._unread_body_deadline = None

    def _headers_late(self) -> None:
        self._header_deadline = None
        self._refuse(
            _answer(
                "408 Request Timeout",
                f"the request's headers did not arrive within {self.header_timeout_s:g} s",
            )
        )

    def _refuse(self, answer: bytes) -> None:
        """Answer and close, unless a response to an earlier request is still being sent
        (pipelining): then only close, rather than cut into that response."""
        self._end_headers()
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(answer)
        self.transport.close()
