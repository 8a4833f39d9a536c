"""Spans as payoff keeps them: the few attributes it reads, and what kind of step each is.

A `Span` is a plain msgspec struct, so that a span whose run has not ended yet can be stored
as it is and judged later with the rest of its run (see `runs.py`). Reading attribute values
raises `Refused` with a reason code (for counting) and a sentence (for people).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import NamedTuple

import msgspec
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from payoff.records import MAX_ID_LENGTH
from payoff.sources.otlp import conventions as c

MAX_COUNT_DIGITS = 20
"""A count sent as a string is read only up to this many digits (the record bounds it lower)."""
MAX_REASON_VALUE = 80
"""Characters of an offending value quoted in a refusal."""

TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8
STATUS_CODE_ERROR = 2
# SpanFlags of OTLP 1.1: bit 8 says whether bit 9 is known; bit 9 says the parent is remote.
FLAG_HAS_IS_REMOTE = 0x100
FLAG_IS_REMOTE = 0x200
_REMOTE_PARENT = FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE

# The kinds of step a span can stand for.
MODEL_CALL = "model_call"
TOOL = "tool"
RUN = "run"
OTHER = "other"

# Why a span was refused: the label of the refusal counters (GET /metrics).
INVALID_IDS = "invalid_ids"
NO_END_TIME = "no_end_time"
NO_CUSTOMER = "no_customer"
NO_PROVIDER = "no_provider"
NO_MODEL = "no_model"
BAD_COUNT = "bad_count"
BAD_VALUE = "bad_value"
TOO_LARGE = "too_large"
REFUSAL_CODES = (
    INVALID_IDS,
    NO_END_TIME,
    NO_CUSTOMER,
    NO_PROVIDER,
    NO_MODEL,
    BAD_COUNT,
    BAD_VALUE,
    TOO_LARGE,
)


class Unusable(msgspec.Struct, frozen=True, tag=True):
    """An attribute value of a type payoff never reads (double, bytes, array, map, empty).

    Doubles are kept as this marker, never converted: a count or a cost is never a float.
    """

    type_name: str

    def __repr__(self) -> str:
        return f"{self.type_name} value"


Value = str | int | bool | Unusable
Attributes = dict[str, Value]


class Span(msgspec.Struct, gc=False):
    """The parts of one span that payoff reads."""

    trace: str
    span: str
    parent: str
    """The parent span id in hex; empty for a span without a parent."""
    local_root: bool
    """No parent, or a remote one: the ancestry within this service ends here."""
    name: str
    scope: str
    end_ns: int
    failed: bool
    attributes: Attributes
    resource: Attributes

    @property
    def key(self) -> str:
        return self.trace + self.span

    @property
    def parent_key(self) -> str:
        return self.trace + self.parent

    @property
    def kind(self) -> str:
        return kind_of(self.attributes)


class Refusal(NamedTuple):
    """A span that should have made a record and did not: which, why (a code), and how."""

    span: str
    code: str
    reason: str


class Refused(Exception):
    """Why one span cannot become a record."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def kind_of(attributes: Attributes) -> str:
    """What step a span stands for, from its operation and the usage it carries."""
    operation = attributes.get(c.OPERATION)
    openinference = attributes.get(c.OPENINFERENCE_KIND)
    ai_sdk = attributes.get(c.AI_SDK_OPERATION)
    if (
        operation == c.INVOKE_AGENT
        or openinference == c.OPENINFERENCE_AGENT
        or ai_sdk in c.AI_SDK_RUNS
    ):
        # A run may carry usage, but it is the sum of its model calls.
        return RUN
    if (
        operation == c.EXECUTE_TOOL
        or openinference == c.OPENINFERENCE_TOOL
        or ai_sdk == c.AI_SDK_TOOL
    ):
        return TOOL
    if operation == c.INVOKE_WORKFLOW or openinference in c.OPENINFERENCE_AGGREGATES:
        return OTHER  # usage summed over the model calls below, which are billed themselves
    if not c.USAGE_KEYS.isdisjoint(attributes):
        return MODEL_CALL
    if (
        operation in c.MODEL_OPERATIONS
        or openinference in c.OPENINFERENCE_MODEL_KINDS
        or ai_sdk in c.AI_SDK_MODEL_CALLS
    ) and not c.MODEL_KEYS_SET.isdisjoint(attributes):
        return MODEL_CALL  # a call that reported no usage: an unpriced step, never dropped
    return OTHER


# -- reading an export ----------------------------------------------------------------------

_READABLE = frozenset({"string_value", "int_value", "bool_value"})


def wanted(key_values: Iterable[KeyValue]) -> Attributes:
    """The attributes payoff reads; prompt and completion content is skipped undecoded."""
    found: Attributes = {}
    for key_value in key_values:
        key = key_value.key
        if key in c.WANTED_KEYS:
            value = key_value.value
            which = value.WhichOneof("value")
            if which in _READABLE:
                found[key] = getattr(value, which)
            else:
                found[key] = Unusable((which or "empty").removesuffix("_value"))
    return found


class Reading(NamedTuple):
    """An export's spans, and those refused before anything else could be read."""

    spans: list[Span]
    refused: list[Refusal]
    total: int
    ignored: int
    """Spans that are not steps or runs and cannot be read (invalid ids): left out."""


def read_spans(request: ExportTraceServiceRequest) -> Reading:
    """Every span of an export with valid ids; a GenAI span without them is refused."""
    spans, refused, total, ignored = [], [], 0, 0
    for resource_spans in request.resource_spans:
        resource = wanted(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                total += 1
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                attributes = wanted(span.attributes)
                if not (
                    len(trace_id) == TRACE_ID_BYTES
                    and any(trace_id)
                    and len(span_id) == SPAN_ID_BYTES
                    and any(span_id)
                ):
                    if kind_of(attributes) == OTHER:
                        ignored += 1
                    else:
                        refused.append(Refusal(span_id.hex(), INVALID_IDS, _bad_ids(span)))
                    continue
                # Positional: a third of the cost of keywords, on the hottest line.
                spans.append(
                    Span(
                        trace_id.hex(),
                        span_id.hex(),
                        parent_id.hex(),
                        not parent_id or span.flags & _REMOTE_PARENT == _REMOTE_PARENT,
                        span.name,
                        scope,
                        span.end_time_unix_nano,
                        span.status.code == STATUS_CODE_ERROR,
                        attributes,
                        resource,
                    )
                )
    return Reading(spans, refused, total, ignored)


def _bad_ids(span: object) -> str:
    trace_id, span_id = getattr(span, "trace_id", b""), getattr(span, "span_id", b"")
    return (
        f"has an invalid trace or span id ({trace_id.hex()!r}, {span_id.hex()!r}): "
        f"expected {TRACE_ID_BYTES} and {SPAN_ID_BYTES} bytes, not all zero"
    )


# -- reading values -------------------------------------------------------------------------


def count(attributes: Attributes, keys: tuple[str, ...]) -> int | None:
    """The first of `keys` present as a count (an int, or a string of digits); None if none."""
    for key in keys:
        value = attributes.get(key)
        if value is None:
            continue
        if type(value) is int and value >= 0:
            return value
        if (
            type(value) is str
            and value.isascii()
            and value.isdigit()
            and len(value) <= MAX_COUNT_DIGITS
        ):
            return int(value)
        raise Refused(
            BAD_COUNT, f"`{key}` must be a non-negative integer count, got {quote(value)}"
        )
    return None


def text(attributes: Attributes, keys: tuple[str, ...]) -> str | None:
    """The first of `keys` present as a non-empty string (an integer id is taken as text)."""
    for key in keys:
        value = attributes.get(key)
        if value is None or value == "":
            continue
        if type(value) is int:
            value = str(value)
        if type(value) is not str:
            raise Refused(BAD_VALUE, f"`{key}` must be a string, got {quote(value)}")
        if len(value) > MAX_ID_LENGTH:
            raise Refused(TOO_LARGE, f"`{key}` is longer than {MAX_ID_LENGTH} characters")
        return value
    return None


def flag(attributes: Attributes, key: str) -> bool | None:
    value = attributes.get(key)
    if value is None or type(value) is bool:
        return value
    raise Refused(BAD_VALUE, f"`{key}` must be a boolean, got {quote(value)}")


def end_time(span: Span) -> str:
    if span.end_ns == 0:
        raise Refused(NO_END_TIME, "has no end time")
    return rfc3339(span.end_ns)


_SECOND_TEXT: dict[int, str] = {}
MAX_CACHED_SECONDS = 4_096


def rfc3339(unix_ns: int) -> str:
    """RFC 3339 in UTC to the microsecond (the ledger's resolution), truncated, never rounded."""
    seconds, nanoseconds = divmod(unix_ns, 1_000_000_000)
    formatted = _SECOND_TEXT.get(seconds)
    if formatted is None:
        # Spans of one export end within a few seconds: format each second once.
        if len(_SECOND_TEXT) >= MAX_CACHED_SECONDS:
            _SECOND_TEXT.clear()
        formatted = _SECOND_TEXT[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{formatted}.{nanoseconds // 1000:06d}Z"


def quote(value: object) -> str:
    if isinstance(value, Unusable):
        return repr(value)
    shown = repr(value)
    if len(shown) > MAX_REASON_VALUE:
        shown = shown[: MAX_REASON_VALUE - 3] + "..."
    return f"{type(value).__name__} {shown}"
