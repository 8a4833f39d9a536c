"""OTLP/HTTP trace exports of OpenTelemetry GenAI spans to payoff records v1 (docs/otlp.md).

An instrumented agent already describes every model call and tool call it makes as a span.
This package reads an export (`POST /v1/traces`, protobuf or JSON) and returns the usage and
task records those spans stand for, as plain dicts ready for the ingest pipeline:

- a span with token usage is a model call (`kind: "llm"`), its counts normalised to payoff's
  inclusive buckets whatever the naming (OTel semconv, OpenLLMetry, OpenInference, the AI
  SDK); a model call that reported no usage is an unpriced step (`kind: "custom"`);
- a tool span is a tool step (`kind: "tool"`);
- a root run (`invoke_agent`, OpenInference `AGENT`, an AI SDK call) that has ended closes its
  task (`completed` or `failed`).

The modules follow the direction of the data: `conventions` (the names read, and where each
was taken from), `body` (parsing), `spans` (the parts of a span kept), `runs` (judging each
run from all its spans), `records` (one span to one record). Record ids come from the trace
and span ids, so a re-sent export yields the same records, which ingest reports as
duplicates. A span that should become a record but cannot is refused with a reason, never
dropped silently.

`records_from_export` judges one export on its own; the server keeps the spans of runs that
have not ended and judges each run once it has (payoff.service.otlp), so that how spans are
batched into exports never changes the answer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from payoff.sources.otlp.body import JSON, PROTOBUF, OtlpError, UnsupportedContentType, parse_export
from payoff.sources.otlp.records import Record
from payoff.sources.otlp.runs import COMPLETE, EXPORT, QUIET, ConversationMark, Decision, decide
from payoff.sources.otlp.spans import REFUSAL_CODES, Reading, Refusal, Span, read_spans

__all__ = [
    "COMPLETE",
    "EXPORT",
    "JSON",
    "PROTOBUF",
    "QUIET",
    "REFUSAL_CODES",
    "ConversationMark",
    "Conversion",
    "Decision",
    "OtlpError",
    "Reading",
    "Refusal",
    "Span",
    "UnsupportedContentType",
    "decide",
    "parse_export",
    "read_spans",
    "records_from_export",
]


@dataclass
class Conversion:
    """What one export gave, judged on its own: records, and an account of every span."""

    records: list[Record] = field(default_factory=list)
    """Usage records (v1, or v2 with details) and task records, JSON-ready."""
    spans: int = 0
    """Spans seen."""
    ignored: int = 0
    """Spans that are neither model calls, tool calls nor runs, and model-call spans of a call
    another span of the trace already stands for (one call traced twice)."""
    refused: list[Refusal] = field(default_factory=list)
    """GenAI spans that cannot become a record: (span id in hex, reason code, reason)."""
    conversations: dict[str, ConversationMark] = field(default_factory=dict)
    """Conversation tasks the records joined, which close when they go quiet."""


def records_from_export(request: ExportTraceServiceRequest) -> Conversion:
    """The records of an export's GenAI spans, judged from this export alone.

    An ancestry that leaves the export is not judged as a run: its steps are recorded, but
    no step of it is inferred visible and it closes no task.
    """
    reading = read_spans(request)
    decision = decide(reading.spans, EXPORT)
    return Conversion(
        decision.records,
        reading.total,
        reading.ignored + decision.ignored + decision.traced_twice,
        reading.refused + decision.refused,
        decision.conversations,
    )
