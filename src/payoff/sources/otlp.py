"""OTLP/HTTP trace exports of OpenTelemetry GenAI spans to payoff records v1 (docs/otlp.md).

An instrumented agent already describes every model call and tool call it makes as a span.
This module reads one export (`POST /v1/traces`, protobuf or JSON) and returns the usage and
task records those spans stand for, as plain dicts ready for the ingest pipeline:

- a span with token usage is a model call (`kind: "llm"`), its counts normalised to payoff's
  inclusive buckets whatever the naming (OTel semconv, OpenLLMetry, OpenInference);
- an `execute_tool` span is a tool step (`kind: "tool"`);
- a root `invoke_agent` span that has ended closes its task (`completed` or `failed`).

Record ids come from the trace and span ids, so a re-sent export yields the same records,
which ingest reports as duplicates. A span that should become a record but cannot (no
customer, a negative count, ...) is refused with a reason, never dropped silently.

Everything here is decided from the one export at hand: a trace whose spans arrive in
separate exports cannot be judged as a whole, which only matters for the visible step and
the task type (see docs/otlp.md).
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue

from payoff.core.errors import Unreadable, Unsupported
from payoff.core.tokens import MAX_TOKENS
from payoff.nesting import too_deep, too_deep_reason
from payoff.records import COST as COST_SYNTAX
from payoff.records import MAX_ID_LENGTH

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

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

INVOKE_AGENT = "invoke_agent"
EXECUTE_TOOL = "execute_tool"
INVOKE_WORKFLOW = "invoke_workflow"

OPERATION = "gen_ai.operation.name"
AGENT_NAME = "gen_ai.agent.name"
TOOL_NAME = "gen_ai.tool.name"
CONVERSATION = "gen_ai.conversation.id"
REQUEST_MODEL = "gen_ai.request.model"
CUSTOMER_KEYS = ("payoff.customer", "enduser.id")
TASK_TYPE = "payoff.task_type"
VISIBLE = "payoff.visible"
COST = "payoff.cost"
OPENINFERENCE_KIND = "openinference.span.kind"

# Each bucket's spellings, first found wins: OTel semconv, then the deprecated or
# OpenLLMetry names, then OpenInference.
INPUT_KEYS = (
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_KEYS = (
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.completion_tokens",
    "llm.token_count.completion",
)
CACHE_READ_KEYS = (
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
)
CACHE_WRITE_KEYS = (
    "gen_ai.usage.cache_creation.input_tokens",
    "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
REASONING_KEYS = (
    "gen_ai.usage.reasoning.output_tokens",
    "gen_ai.usage.reasoning_tokens",
    "llm.token_count.completion_details.reasoning",
)
USAGE_KEYS = frozenset(
    INPUT_KEYS + OUTPUT_KEYS + CACHE_READ_KEYS + CACHE_WRITE_KEYS + REASONING_KEYS
)
# Who is billed for the call comes before what model family it is: Claude on Bedrock names
# `aws` as OpenInference's llm.provider and `anthropic` as its llm.system.
PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
# The response names the model that actually ran (a dated snapshot rather than an alias).
MODEL_KEYS = ("gen_ai.response.model", REQUEST_MODEL, "llm.model_name")

# OpenInference spans that sum the usage of the LLM spans below them.
AGGREGATES = frozenset({"AGENT", "CHAIN"})

# Provider names of OTel semconv (current and deprecated `gen_ai.system` values),
# OpenLLMetry and OpenInference, lower-cased, to the provider ids of the price catalog
# (genai-prices 0.2.3). Anything else passes through unchanged and is then unpriced.
PROVIDERS = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "aws": "aws",
    "bedrock": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "az.ai.openai": "azure",
    "az.ai.inference": "azure",
    "azure": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "vertex_ai": "google",
    "vertexai": "google",
    "gemini": "google",
    "google": "google",
    "mistral_ai": "mistral",
    "mistralai": "mistral",
    "mistral": "mistral",
    "x_ai": "x-ai",
    "xai": "x-ai",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "perplexity": "perplexity",
}

WANTED_KEYS = frozenset(
    {
        OPERATION,
        AGENT_NAME,
        TOOL_NAME,
        CONVERSATION,
        TASK_TYPE,
        VISIBLE,
        COST,
        OPENINFERENCE_KIND,
        *CUSTOMER_KEYS,
        *USAGE_KEYS,
        *PROVIDER_KEYS,
        *MODEL_KEYS,
    }
)
"""The only attributes read; the others (prompts, completions) are never even decoded."""

# The record kinds a span can stand for.
MODEL_CALL = "model_call"
TOOL = "tool"
AGENT = "agent"
OTHER = "other"

Attributes = dict[str, object]


class OtlpError(Unreadable):
    """A body that is not a valid OTLP trace export."""


class UnsupportedContentType(Unsupported, OtlpError):
    """A body that is neither OTLP protobuf nor OTLP JSON."""


@dataclass
class Conversion:
    """What one export gave: records, and an account of every span that did not become one."""

    records: list[dict[str, object]] = field(default_factory=list)
    """Usage and task records v1, JSON-ready."""
    spans: int = 0
    """Spans seen."""
    ignored: int = 0
    """Spans that are neither model calls with usage, tool calls nor agent runs."""
    refused: list[tuple[str, str]] = field(default_factory=list)
    """(span id in hex, reason) of GenAI spans that cannot become a record."""


class _Refused(Exception):
    """Why one span cannot become a record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Unusable:
    """An attribute value of a type payoff never reads (double, bytes, array, map, empty).

    Doubles are kept as this marker, never converted: a count or a cost is never a float.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"{self.type_name} value"


# -- parsing the body -----------------------------------------------------------------------


def parse_export(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The export in an OTLP/HTTP body, protobuf or JSON; OtlpError says what is wrong."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == PROTOBUF:
        return _parse_protobuf(body)
    if media_type == JSON:
        return _parse_json(body)
    raise UnsupportedContentType(
        f"unsupported content type {content_type!r}: an OTLP/HTTP trace export is "
        f"{PROTOBUF} or {JSON}"
    )


def _parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError:
        raise OtlpError(
            "the body is not a protobuf ExportTraceServiceRequest (wire format corrupt)"
        ) from None
    if body and not request.resource_spans:
        # Only unknown fields: valid protobuf, but not a trace export.
        raise OtlpError("the body is protobuf but holds no resourceSpans: not a trace export")
    return request


def _parse_json(body: bytes) -> ExportTraceServiceRequest:
    if too_deep(body):
        raise OtlpError(f"the body {too_deep_reason()}")
    try:
        document = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise OtlpError(f"the body is not valid JSON ({exc})") from None
    except RecursionError:
        raise OtlpError(f"the body {too_deep_reason()}") from None
    if not isinstance(document, dict):
        raise OtlpError(
            f"an OTLP JSON trace export is an object with `resourceSpans`, "
            f"not a {type(document).__name__}"
        )
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        # Unknown fields are ignored, as the OTLP specification asks of receivers.
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpError(f"the body is not an OTLP JSON trace export: {exc}") from None
    except RecursionError:
        raise OtlpError(f"the body {too_deep_reason()}") from None
    return request


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_ID_FIELDS = (
    ("traceId", "trace_id"),
    ("spanId", "span_id"),
    ("parentSpanId", "parent_span_id"),
)


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP JSON's hex ids to the base64 that the protobuf JSON mapping parses.

    OTLP JSON departs from the generic mapping here: trace and span ids are hex strings.
    Anything of the wrong shape is left as it is, for ParseDict to name.
    """
    for r, resource_spans in enumerate(_items(document, "resourceSpans", "resource_spans")):
        for s, scope_spans in enumerate(_items(resource_spans, "scopeSpans", "scope_spans")):
            for n, span in enumerate(_items(scope_spans, "spans")):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                _rewrite_ids(span, where)
                for k, link in enumerate(_items(span, "links")):
                    _rewrite_ids(link, f"{where}.links[{k}]")


def _items(parent: object, *names: str) -> list[dict[str, Any]]:
    if not isinstance(parent, dict):
        return []
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def _rewrite_ids(obj: dict[str, Any], where: str) -> None:
    for names in _ID_FIELDS:
        for name in names:
            value = obj.get(name)
            if not isinstance(value, str):
                continue
            if not _HEX.fullmatch(value):
                raise OtlpError(
                    f"{where}.{name}: {_quote(value)} is not an even number of hex digits "
                    "(OTLP JSON encodes ids as hex, not base64)"
                )
            obj[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


# -- reading spans --------------------------------------------------------------------------


@dataclass(slots=True)
class _Resource:
    """What a resource says for all its spans: a customer and a task type, read once."""

    customer: str | None = None
    task_type: str | None = None
    problem: str | None = None
    """Why one of them could not be read; a span that needs it is refused with this."""


@dataclass(slots=True, eq=False)
class _Span:
    """The parts of one span that the conversion reads."""

    trace: str
    span: str
    key: str
    parent_key: str
    local_root: bool
    """No parent, or a remote one: the ancestry within this service ends here."""
    name: str
    scope: str
    end_ns: int
    failed: bool
    attributes: Attributes
    resource: _Resource
    ids_valid: bool
    kind: str
    # Filled in by _Traces: whether the whole ancestry is in the export, and if so the
    # outermost agent run at or above this span.
    resolved: bool = False
    complete: bool = False
    root: _Span | None = None


_READABLE = frozenset({"string_value", "int_value", "bool_value"})


def _wanted(key_values: Iterable[KeyValue]) -> Attributes:
    """The attributes payoff reads; prompt and completion content is skipped undecoded."""
    found: Attributes = {}
    for key_value in key_values:
        key = key_value.key
        if key in WANTED_KEYS:
            value = key_value.value
            which = value.WhichOneof("value")
            if which in _READABLE:
                found[key] = getattr(value, which)
            else:
                found[key] = _Unusable((which or "empty").removesuffix("_value"))
    return found


def _resource(attributes: Attributes) -> _Resource:
    try:
        return _Resource(_text(attributes, CUSTOMER_KEYS), _text(attributes, (TASK_TYPE,)))
    except _Refused as refusal:
        return _Resource(problem=f"its resource's {refusal.reason}")


def _kind(attributes: Attributes) -> str:
    operation = attributes.get(OPERATION)
    if operation == INVOKE_AGENT:
        # An agent span may carry usage, but it is the sum of its model calls.
        return AGENT
    if operation == EXECUTE_TOOL:
        return TOOL
    if USAGE_KEYS.isdisjoint(attributes):
        return OTHER
    if operation == INVOKE_WORKFLOW or attributes.get(OPENINFERENCE_KIND) in AGGREGATES:
        return OTHER  # usage summed over the model calls below, which are billed themselves
    return MODEL_CALL


_REMOTE_PARENT = FLAG_HAS_IS_REMOTE | FLAG_IS_REMOTE


def _spans(request: ExportTraceServiceRequest) -> list[_Span]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = _resource(_wanted(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            scope = scope_spans.scope.name
            for span in scope_spans.spans:
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                trace, span_hex = trace_id.hex(), span_id.hex()
                attributes = _wanted(span.attributes)
                # Positional: a third of the cost of keywords, on the hottest line.
                spans.append(
                    _Span(
                        trace,
                        span_hex,
                        trace + span_hex,
                        trace + parent_id.hex(),
                        not parent_id or span.flags & _REMOTE_PARENT == _REMOTE_PARENT,
                        span.name,
                        scope,
                        span.end_time_unix_nano,
                        span.status.code == STATUS_CODE_ERROR,
                        attributes,
                        resource,
                        len(trace_id) == TRACE_ID_BYTES
                        and any(trace_id)
                        and len(span_id) == SPAN_ID_BYTES
                        and any(span_id),
                        _kind(attributes),
                    )
                )
    return spans


# -- the shape of each trace ----------------------------------------------------------------


class _Traces:
    """Parent links of the export's spans, to find each span's root agent run.

    The root agent run of a span is the outermost `invoke_agent` span at or above it, known
    only when the span's whole ancestry is in the export (up to a span without a parent, or
    with a remote one). Each span is resolved once, so the walks cost O(spans) in all.
    """

    def __init__(self, spans: list[_Span]) -> None:
        self._by_key = {span.key: span for span in spans}
        # An acyclic chain of ancestors is at most as long as the export; a longer walk loops.
        self._max_walk = len(spans) + 1
        self.first_root: dict[str, _Span] = {}
        """The first root agent run of each trace, by trace id."""
        for span in spans:
            if span.kind == AGENT and self.root_agent(span) is span:
                self.first_root.setdefault(span.trace, span)

    def root_agent(self, span: _Span) -> _Span | None:
        """The outermost agent span at or above `span`; None when unknown or there is none."""
        if span.resolved:
            return span.root
        path: list[_Span] = []
        node: _Span | None = span
        complete, root = False, None  # stays so for a cycle of parents
        for _ in range(self._max_walk):
            assert node is not None
            if node.resolved:
                complete, root = node.complete, node.root
                break
            path.append(node)
            if node.local_root:
                complete = True
                break
            node = self._by_key.get(node.parent_key)
            if node is None:
                break  # the ancestry leaves the export: cannot judge
        for node in reversed(path):
            if complete and root is None and node.kind == AGENT:
                root = node
            node.resolved, node.complete, node.root = True, complete, root
        return span.root

    def inferred_visible(self, spans: list[_Span]) -> set[_Span]:
        """The last model call under each root agent run, unless any of them says itself.

        An application that sets `payoff.visible` on a step is trusted for that whole run:
        guessing beside it could mark a second step visible.
        """
        last: dict[_Span, _Span] = {}
        told: set[_Span] = set()
        for span in spans:
            if span.kind != MODEL_CALL:
                continue
            root = self.root_agent(span)
            if root is None:
                continue
            if VISIBLE in span.attributes:
                told.add(root)
                continue
            best = last.get(root)
            if best is None or (span.end_ns, span.span) > (best.end_ns, best.span):
                last[root] = span
        return {span for root, span in last.items() if root not in told}


# -- spans to records -----------------------------------------------------------------------


def records_from_export(request: ExportTraceServiceRequest) -> Conversion:
    """The usage and task records of an export's GenAI spans, and an account of the rest."""
    spans = _spans(request)
    traces = _Traces(spans)
    visible = traces.inferred_visible(spans)
    conversion = Conversion(spans=len(spans))
    # Several root runs in one trace close its task once per status, at the last of them.
    task_records: dict[tuple[object, object], tuple[int, dict[str, object]]] = {}
    for span in spans:
        if span.kind == OTHER:
            conversion.ignored += 1
            continue
        try:
            if span.kind == MODEL_CALL:
                conversion.records.append(_model_call_record(span, traces, span in visible))
            elif span.kind == TOOL:
                conversion.records.append(_tool_record(span, traces))
            else:
                record = _task_record(span, traces)
                if record is not None:
                    key = (record["id"], record["status"])
                    if key not in task_records or task_records[key][0] < span.end_ns:
                        task_records[key] = (span.end_ns, record)
        except _Refused as refusal:
            conversion.refused.append((span.span, refusal.reason))
    # Task records come after the steps: a task's end follows its work.
    conversion.records.extend(record for _, record in task_records.values())
    return conversion


# Each record is made valid v1 by construction: the checks below are those of
# payoff.records that the values read from spans could fail (lengths, bounds, cost syntax);
# the tests decode every record made with payoff.records to keep the two in step.


def _model_call_record(span: _Span, traces: _Traces, inferred_visible: bool) -> dict[str, object]:
    attributes = span.attributes
    provider = _text(attributes, PROVIDER_KEYS)
    if provider is None:
        raise _Refused(f"names no provider (one of {', '.join(PROVIDER_KEYS)})")
    model = _text(attributes, MODEL_KEYS)
    if model is None:
        raise _Refused(f"names no model (one of {', '.join(MODEL_KEYS)})")
    told = _flag(attributes, VISIBLE)
    record = _step(span, traces, "llm")
    record["provider"] = PROVIDERS.get(provider.lower(), provider)
    record["model"] = model
    _add_counts(record, attributes)
    record["visible"] = inferred_visible if told is None else told
    requested = attributes.get(REQUEST_MODEL)
    if type(requested) is str and requested and requested != model:
        _add_attribute(record, REQUEST_MODEL, requested)
    return record


def _tool_record(span: _Span, traces: _Traces) -> dict[str, object]:
    told = _flag(span.attributes, VISIBLE)
    record = _step(span, traces, "tool")
    if told is not None:
        record["visible"] = told
    cost = span.attributes.get(COST)
    if cost is not None:
        if type(cost) is int and cost >= 0:
            cost = str(cost)
        if type(cost) is not str or not COST_SYNTAX.fullmatch(cost):
            raise _Refused(
                f"`{COST}` must be a decimal string of USD below 1,000,000,000 with at most 9 "
                f"decimal places, got {_quote(cost)}"
            )
        record["cost"] = cost
    tool = span.attributes.get(TOOL_NAME)
    if type(tool) is str and tool:
        _add_attribute(record, TOOL_NAME, tool)
    return record


def _task_record(span: _Span, traces: _Traces) -> dict[str, object] | None:
    """The task record a root agent run stands for; None for a nested or unjudged one."""
    if traces.root_agent(span) is not span:
        return None
    if CONVERSATION in span.attributes:
        # A conversation outlives each of its turns: one turn's end does not end it.
        return None
    if not span.ids_valid:
        raise _Refused(_bad_ids(span))
    record: dict[str, object] = {
        "record": "task",
        "id": span.trace,
        "customer": _customer(span),
        "status": "failed" if span.failed else "completed",
        "time": _end_time(span),
    }
    task_type = _task_type(span, traces)
    if task_type is not None:
        record["type"] = task_type
    return record


def _step(span: _Span, traces: _Traces, kind: str) -> dict[str, object]:
    """The fields every usage record of a span shares."""
    if not span.ids_valid:
        raise _Refused(_bad_ids(span))
    record: dict[str, object] = {
        "record": "usage",
        "id": f"otel-{span.trace}-{span.span}",
        "time": _end_time(span),
        "customer": _customer(span),
        "task": _text(span.attributes, (CONVERSATION,)) or span.trace,
        "kind": kind,
    }
    task_type = _task_type(span, traces)
    if task_type is not None:
        record["task_type"] = task_type
    attributes = _record_attributes(span)
    if attributes:
        record["attributes"] = attributes
    return record


def _record_attributes(span: _Span) -> dict[str, str]:
    """A few strings that say what the step was; never prompt or completion content."""
    kept: dict[str, str] = {}
    if span.name:
        kept["otel.span_name"] = span.name
    if span.scope:
        kept["otel.scope.name"] = span.scope
    for key in (OPERATION, AGENT_NAME):
        value = span.attributes.get(key)
        if type(value) is str and value:
            kept[key] = value
    if span.failed:
        # A failed call is still billed by the provider; saying so explains the cost.
        kept["otel.status_code"] = "ERROR"
    return kept


def _add_attribute(record: dict[str, object], key: str, value: str) -> None:
    attributes = record.setdefault("attributes", {})
    assert isinstance(attributes, dict)
    attributes[key] = value


def _customer(span: _Span) -> str:
    customer = _text(span.attributes, CUSTOMER_KEYS)
    if customer is not None:
        return customer
    if span.resource.problem is not None:
        raise _Refused(span.resource.problem)
    if span.resource.customer is None:
        raise _Refused(
            "has no customer: set `payoff.customer` or `enduser.id` on the span or its resource"
        )
    return span.resource.customer


def _task_type(span: _Span, traces: _Traces) -> str | None:
    """The span's own `payoff.task_type`, its resource's, else its root agent run's."""
    told = _text(span.attributes, (TASK_TYPE,))
    if told is not None:
        return told
    if span.resource.task_type is not None:
        return span.resource.task_type
    root = traces.root_agent(span) or traces.first_root.get(span.trace)
    if root is None:
        return None
    return _text(root.attributes, (TASK_TYPE, AGENT_NAME))


def _add_counts(record: dict[str, object], attributes: Attributes) -> None:
    """The five buckets, made inclusive: parts larger than their total were outside it."""
    input_tokens = _count(attributes, INPUT_KEYS)
    cache_read = _count(attributes, CACHE_READ_KEYS)
    cache_write = _count(attributes, CACHE_WRITE_KEYS)
    output_tokens = _count(attributes, OUTPUT_KEYS)
    reasoning = _count(attributes, REASONING_KEYS)
    if cache_read + cache_write > input_tokens:
        # The semconv asks for a total that includes cached tokens; an instrumentation that
        # reports it the Anthropic way (cache outside) gives itself away when the parts exceed
        # it. A total that is exclusive yet still larger than the parts cannot be told apart.
        input_tokens += cache_read + cache_write
    if reasoning > output_tokens:
        output_tokens += reasoning  # the Gemini way: thoughts beside the candidates
    if input_tokens > MAX_TOKENS or output_tokens > MAX_TOKENS:
        raise _Refused(f"counts more than {MAX_TOKENS:,} input or output tokens in one call")
    record["input_tokens"] = input_tokens
    record["cache_read_tokens"] = cache_read
    record["cache_write_tokens"] = cache_write
    record["output_tokens"] = output_tokens
    record["reasoning_tokens"] = reasoning


def _count(attributes: Attributes, keys: tuple[str, ...]) -> int:
    """The first of `keys` present as a count (an int, or a string of digits); 0 if none."""
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
        raise _Refused(f"`{key}` must be a non-negative integer count, got {_quote(value)}")
    return 0


def _text(attributes: Attributes, keys: tuple[str, ...]) -> str | None:
    """The first of `keys` present as a non-empty string (an integer id is taken as text)."""
    for key in keys:
        value = attributes.get(key)
        if value is None or value == "":
            continue
        if type(value) is int:
            value = str(value)
        if type(value) is not str:
            raise _Refused(f"`{key}` must be a string, got {_quote(value)}")
        if len(value) > MAX_ID_LENGTH:
            raise _Refused(f"`{key}` is longer than {MAX_ID_LENGTH} characters")
        return value
    return None


def _flag(attributes: Attributes, key: str) -> bool | None:
    value = attributes.get(key)
    if value is None or type(value) is bool:
        return value
    raise _Refused(f"`{key}` must be a boolean, got {_quote(value)}")


def _end_time(span: _Span) -> str:
    if span.end_ns == 0:
        raise _Refused("has no end time")
    return _rfc3339(span.end_ns)


_SECOND_TEXT: dict[int, str] = {}
MAX_CACHED_SECONDS = 4_096


def _rfc3339(unix_ns: int) -> str:
    """RFC 3339 in UTC to the microsecond (the ledger's resolution), truncated, never rounded."""
    seconds, nanoseconds = divmod(unix_ns, 1_000_000_000)
    text = _SECOND_TEXT.get(seconds)
    if text is None:
        # Spans of one export end within a few seconds: format each second once.
        if len(_SECOND_TEXT) >= MAX_CACHED_SECONDS:
            _SECOND_TEXT.clear()
        text = _SECOND_TEXT[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{nanoseconds // 1000:06d}Z"


def _bad_ids(span: _Span) -> str:
    return (
        f"has an invalid trace or span id ({span.trace!r}, {span.span!r}): "
        f"expected {TRACE_ID_BYTES} and {SPAN_ID_BYTES} bytes, not all zero"
    )


def _quote(value: object) -> str:
    if isinstance(value, _Unusable):
        return repr(value)
    text = repr(value)
    if len(text) > MAX_REASON_VALUE:
        text = text[: MAX_REASON_VALUE - 3] + "..."
    return f"{type(value).__name__} {text}"
