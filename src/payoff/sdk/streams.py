"""Streamed responses: pass every chunk through untouched, read the usage as it goes by.

Where each provider puts the usage of a stream:

- OpenAI chat completions: the last chunk, when the request asked for it with
  `stream_options={"include_usage": True}` (otherwise the stream carries none);
- OpenAI Responses: the `response` of the `response.completed` event (also of
  `response.incomplete` and `response.failed`);
- Anthropic: `message_start` carries the input side (and a first output count),
  `message_delta` the final output count, and may repeat input fields: the later wins;
- Gemini: `usage_metadata` of the chunks, cumulative; the last one counts.

The wrapper records its step once, when the stream ends, is closed, fails, or is abandoned
(the wrapper garbage-collected, with the usage seen so far); a stream
that carried no usage is recorded as a step of unknown usage (see Task.record).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from payoff.core.tokens import TokenCounts, UsageDetails
from payoff.sources.providers import model_from_response, usage_details_from_response

logger = logging.getLogger("payoff.sdk")

StreamResult = tuple[str, TokenCounts, UsageDetails, str | None]
"""(usage format, token counts, model) of a finished stream."""


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def _fields(usage: Any) -> dict[str, Any]:
    if isinstance(usage, Mapping):
        return {k: v for k, v in usage.items() if v is not None}
    return dict(usage.model_dump(by_alias=False, exclude_none=True))


def is_stream(obj: Any) -> bool:
    """A stream is iterable, and neither a dict nor an SDK model (pydantic models iterate too)."""
    if isinstance(obj, Mapping | str | bytes) or hasattr(obj, "model_dump"):
        return False
    return hasattr(obj, "__iter__") or hasattr(obj, "__aiter__")


class StreamUsage:
    """Collects the usage a stream carries, whatever the provider."""

    def __init__(self) -> None:
        self.usage_format: str | None = None
        self.usage: Any = None
        self.model: str | None = None

    def see(self, chunk: Any) -> None:
        kind = _get(chunk, "type")
        if kind == "chunk" and _get(chunk, "chunk") is not None:
            # openai's `chat.completions.stream()` helper wraps each raw chunk in a ChunkEvent.
            self.see(_get(chunk, "chunk"))
        elif kind in ("message_start", "message_stop") and _get(chunk, "message") is not None:
            message = _get(chunk, "message")
            if _get(message, "usage") is not None:
                self._take("anthropic", _fields(_get(message, "usage")), message)
        elif kind == "message_delta" and _get(chunk, "usage") is not None:
            merged = dict(self.usage or {})
            merged.update(_fields(_get(chunk, "usage")))
            self._take("anthropic", merged, None)
        elif isinstance(kind, str) and kind.startswith("response."):
            response = _get(chunk, "response")
            if response is not None and _get(response, "usage") is not None:
                self._take("openai.responses", _get(response, "usage"), response)
        elif _get(chunk, "usage_metadata") is not None or _get(chunk, "usageMetadata") is not None:
            usage = _get(chunk, "usage_metadata") or _get(chunk, "usageMetadata")
            self._take("gemini", usage, chunk)
        elif _get(chunk, "usage") is not None:
            self._take("openai.chat", _get(chunk, "usage"), chunk)
        elif self.model is None:
            self.model = model_from_response(chunk)

    def _take(self, usage_format: str, usage: Any, whole: Any) -> None:
        self.usage_format, self.usage = usage_format, usage
        model = model_from_response(whole) if whole is not None else None
        self.model = model or self.model

    def result(self) -> StreamResult | None:
        if self.usage is None or self.usage_format is None:
            return None
        usage_format, counts, details = usage_details_from_response(self.usage, self.usage_format)
        return usage_format, counts, details, self.model


class _Ending:
    """Calls `on_end(usage)` once, whichever comes first: the end, a close, or collection."""

    def __init__(self, on_end: Callable[[StreamUsage], None], usage: StreamUsage) -> None:
        self._on_end: Callable[[StreamUsage], None] | None = on_end
        self._usage = usage

    def __call__(self) -> None:
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end(self._usage)


def _end_abandoned(ending: _Ending) -> None:
    try:
        ending()
    except Exception:  # no caller to raise to (garbage collection): an enforced budget too
        logger.exception("payoff: recording an abandoned stream failed")


class RecordedStream:
    """Iterates the wrapped stream (sync or async) and calls `on_end` once, at its end.

    Attributes not defined here are the wrapped stream's, so `stream.response` or
    `stream.get_final_message()` still work.
    """

    def __init__(self, stream: Any, on_end: Callable[[StreamUsage], None]) -> None:
        self._stream = stream
        self._usage = StreamUsage()
        self._ending = _Ending(on_end, self._usage)
        self._iterator: Any = None
        # A stream left with `break` and never closed still used tokens: record it, with the
        # usage seen so far, when the wrapper is collected (or at exit). The finalizer holds
        # only the ending, never the wrapper, or the wrapper would never be collected.
        weakref.finalize(self, _end_abandoned, self._ending)

    def _see(self, chunk: Any) -> None:
        try:
            self._usage.see(chunk)
        except Exception:  # metering must never break the caller's stream
            logger.exception("payoff: could not read usage from a stream chunk")

    def _finish(self) -> None:
        self._ending()

    def __iter__(self) -> RecordedStream:
        return self

    def __next__(self) -> Any:
        if self._iterator is None:
            self._iterator = iter(self._stream)
        try:
            chunk = next(self._iterator)
        except BaseException:  # the end (StopIteration) or a failure: either way, record
            self._finish()
            raise
        self._see(chunk)
        return chunk

    def __aiter__(self) -> RecordedStream:
        return self

    async def __anext__(self) -> Any:
        if self._iterator is None:
            self._iterator = self._stream.__aiter__()
        try:
            chunk = await self._iterator.__anext__()
        except BaseException:
            self._finish()
            raise
        self._see(chunk)
        return chunk

    def close(self) -> None:
        try:
            close = getattr(self._stream, "close", None)
            if callable(close):
                close()
        finally:
            self._finish()

    async def aclose(self) -> None:
        try:
            close = getattr(self._stream, "aclose", None) or getattr(self._stream, "close", None)
            if callable(close):
                result = close()
                if hasattr(result, "__await__"):
                    await result
        finally:
            self._finish()

    def __enter__(self) -> RecordedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> RecordedStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
