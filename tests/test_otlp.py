"""OTLP GenAI spans to records v1: real SDK spans, the real OTLP encoder, a real ledger.

Spans are recorded by the OpenTelemetry SDK, encoded by the exporter's own OTLP encoder,
serialised, parsed back by `parse_export`, converted, and ingested into a SQLite ledger,
whose tasks and costs are then checked against the catalog's pricing of the same counts.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Sequence
from typing import Any

import genai_prices
import msgspec
import pytest
from google.protobuf.json_format import MessageToDict
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource as ProtoResource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags

from factories import NOV_3_US
from payoff.catalog import Catalog
from payoff.core.errors import PayoffError
from payoff.core.money import parse_usd_exact_nanousd, round_usd_to_nanousd
from payoff.core.tokens import DETAIL_FIELDS, TokenCounts
from payoff.records import V2_FIELDS, TaskRecord, UsageRecord, decode_record
from payoff.service import IngestReport, ingest_lines
from payoff.sources.otlp import (
    Conversion,
    OtlpError,
    parse_export,
    records_from_export,
)
from payoff.store.protocol import Store

NOV_3_NS = NOV_3_US * 1000
MS = 1_000_000  # nanoseconds
PROTOBUF = "application/x-protobuf"
JSON = "application/json"

CHAT: dict[str, Any] = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.response.model": "gpt-4o-2024-08-06",
    "gen_ai.usage.input_tokens": 1200,
    "gen_ai.usage.cache_read.input_tokens": 1000,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.input.messages": '[{"role": "user", "content": "my secret prompt"}]',
    "gen_ai.output.messages": '[{"role": "assistant", "content": "the secret answer"}]',
}
AGENT = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "support"}
TOOL = {
    "gen_ai.operation.name": "execute_tool",
    "gen_ai.tool.name": "search_kb",
    "payoff.cost": "0.004",
}


class Recorder:
    """Spans of one test, recorded by the real SDK and encoded by the real OTLP encoder."""

    def __init__(self, resource: dict[str, Any] | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        attributes = {"payoff.customer": "acme"} if resource is None else resource
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = provider.get_tracer("payoff.tests")

    def start(
        self,
        name: str,
        attributes: dict[str, Any] | None = None,
        parent: trace.Span | None = None,
        at_ms: int = 0,
    ) -> Span:
        context = None if parent is None else trace.set_span_in_context(parent)
        span = self.tracer.start_span(
            name, context=context, attributes=attributes, start_time=NOV_3_NS + at_ms * MS
        )
        assert isinstance(span, Span)
        return span

    def step(
        self,
        name: str,
        attributes: dict[str, Any],
        parent: trace.Span | None,
        end_ms: int,
    ) -> Span:
        span = self.start(name, attributes, parent, end_ms - 100)
        span.end(end_time=NOV_3_NS + end_ms * MS)
        return span

    def request(self, spans: Sequence[ReadableSpan] | None = None) -> ExportTraceServiceRequest:
        return encode_spans(self.exporter.get_finished_spans() if spans is None else spans)

    def body(self, spans: Sequence[ReadableSpan] | None = None) -> bytes:
        return bytes(self.request(spans).SerializeToString())

    def convert(self, spans: Sequence[ReadableSpan] | None = None) -> Conversion:
        return convert(self.body(spans))


def end(span: Span, at_ms: int, *, error: bool = False) -> None:
    if error:
        span.set_status(Status(StatusCode.ERROR, "the agent gave up"))
    span.end(end_time=NOV_3_NS + at_ms * MS)


def convert(body: bytes, content_type: str = PROTOBUF) -> Conversion:
    conversion = records_from_export(parse_export(body, content_type))
    for record in conversion.records:
        # Every record made must be valid v1, exactly as ingest will decode it.
        decode_record(msgspec.json.encode(record))
    return conversion


def ingest(store: Store, records: list[dict[str, object]]) -> IngestReport:
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1)]
    return ingest_lines(store, lines, workers=0)


def reasons_by_span(conversion: Conversion) -> dict[str, str]:
    return {refusal.span: refusal.reason for refusal in conversion.refused}


def usage(conversion: Conversion) -> list[UsageRecord]:
    decoded = [decode_record(msgspec.json.encode(r)) for r in conversion.records]
    return [r for r in decoded if isinstance(r, UsageRecord)]


def tasks(conversion: Conversion) -> list[TaskRecord]:
    decoded = [decode_record(msgspec.json.encode(r)) for r in conversion.records]
    return [r for r in decoded if isinstance(r, TaskRecord)]


def catalog_cost(record: UsageRecord) -> tuple[int, int]:
    assert record.provider is not None and record.model is not None
    at_us = int(record.time.timestamp()) * 10**6 + record.time.microsecond
    table = Catalog().price_table(record.provider, record.model, False, at_us)
    assert table is not None, f"{record.provider}/{record.model} is not in the catalog"
    return table.cost_nanousd(record.token_counts(), visible=record.visible)


def agent_trace(recorder: Recorder, *, error: bool = False) -> tuple[Span, list[Span]]:
    """invoke_agent, a planning chat, a tool call, the answering chat."""
    root = recorder.start("invoke_agent support", AGENT)
    plan = recorder.step("chat gpt-4o", CHAT, root, 1_000)
    tool = recorder.step("execute_tool search_kb", TOOL, root, 2_000)
    answer_usage = {
        **CHAT,
        "gen_ai.usage.input_tokens": 2500,
        "gen_ai.usage.cache_read.input_tokens": 2048,
        "gen_ai.usage.output_tokens": 420,
        "gen_ai.usage.reasoning.output_tokens": 128,
    }
    answer = recorder.step("chat gpt-4o", answer_usage, root, 3_000)
    end(root, 3_500, error=error)
    return root, [plan, tool, answer]


def hex_id(span: Span, which: str = "span") -> str:
    context = span.get_span_context()
    return f"{context.trace_id:032x}" if which == "trace" else f"{context.span_id:016x}"


# -- an agent trace end to end --------------------------------------------------------------


def test_an_agent_trace_becomes_its_steps_and_a_completed_task(store: Store) -> None:
    recorder = Recorder()
    root, (plan, tool, answer) = agent_trace(recorder)
    conversion = recorder.convert()
    trace_id = hex_id(root, "trace")

    assert (conversion.spans, conversion.ignored, conversion.refused) == (4, 0, [])
    steps = {r.id: r for r in usage(conversion)}
    plan_record = steps[f"otel-{trace_id}-{hex_id(plan)}"]
    answer_record = steps[f"otel-{trace_id}-{hex_id(answer)}"]
    tool_record = steps[f"otel-{trace_id}-{hex_id(tool)}"]
    assert plan_record.task == answer_record.task == tool_record.task == trace_id
    assert {r.customer for r in steps.values()} == {"acme"}
    assert {r.task_type for r in steps.values()} == {"support"}
    assert (plan_record.visible, answer_record.visible, tool_record.visible) == (
        False,
        True,
        False,
    )
    assert answer_record.provider == "openai" and answer_record.model == "gpt-4o-2024-08-06"
    assert answer_record.token_counts() == TokenCounts(2500, 2048, 0, 420, 128)
    assert (tool_record.kind, tool_record.cost) == ("tool", "0.004")
    assert tool_record.attributes is not None
    assert tool_record.attributes["gen_ai.tool.name"] == "search_kb"
    assert answer_record.attributes == {
        "otel.span_name": "chat gpt-4o",
        "otel.scope.name": "payoff.tests",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o",
    }
    assert "secret" not in json.dumps(conversion.records)
    [task] = tasks(conversion)
    assert (task.id, task.customer, task.status, task.type) == (
        trace_id,
        "acme",
        "completed",
        "support",
    )
    assert task.time.isoformat() == "2026-11-03T10:00:03.500000+00:00"

    report = ingest(store, conversion.records)
    assert (report.accepted, report.rejected, report.conflicts, report.unpriced) == (4, 0, 0, 0)
    [summary] = store.tasks()
    plan_cost, _ = catalog_cost(plan_record)
    answer_cost, answer_visible_cost = catalog_cost(answer_record)
    assert (summary.id, summary.status, summary.type, summary.steps) == (
        trace_id,
        "completed",
        "support",
        3,
    )
    assert summary.cost_nanousd == plan_cost + answer_cost + parse_usd_exact_nanousd("0.004")
    assert summary.cost_visible_nanousd == answer_visible_cost > 0
    assert summary.tokens_total == 1200 + 300 + 2500 + 420
    assert summary.tokens_visible == 420 - 128


def test_a_failed_root_span_fails_its_task(store: Store) -> None:
    recorder = Recorder()
    agent_trace(recorder, error=True)
    conversion = recorder.convert()
    [task] = tasks(conversion)
    assert task.status == "failed"
    ingest(store, conversion.records)
    [summary] = store.tasks()
    assert summary.status == "failed"


def test_a_resent_export_yields_only_duplicates(store: Store) -> None:
    recorder = Recorder()
    agent_trace(recorder)
    body = recorder.body()
    first = ingest(store, convert(body).records)
    again = ingest(store, convert(body).records)
    assert (first.accepted, first.duplicates) == (4, 0)
    assert (again.accepted, again.duplicates, again.conflicts, again.rejected) == (0, 4, 0, 0)


# -- token attributes ----------------------------------------------------------------------

ATTRIBUTE_SETS = {
    "otel-semconv": {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "o3",
        "gen_ai.response.model": "o3-2025-04-16",
        "gen_ai.usage.input_tokens": 5000,
        "gen_ai.usage.cache_read.input_tokens": 3000,
        "gen_ai.usage.cache_creation.input_tokens": 500,
        "gen_ai.usage.output_tokens": 900,
        "gen_ai.usage.reasoning.output_tokens": 600,
    },
    "openllmetry": {
        "llm.request.type": "chat",
        "gen_ai.system": "OpenAI",
        "gen_ai.request.model": "o3",
        "gen_ai.response.model": "o3-2025-04-16",
        "gen_ai.usage.prompt_tokens": 5000,
        "gen_ai.usage.cache_read_input_tokens": 3000,
        "gen_ai.usage.cache_creation_input_tokens": 500,
        "gen_ai.usage.completion_tokens": 900,
        "gen_ai.usage.reasoning_tokens": 600,
        "gen_ai.prompt.0.content": "my secret prompt",
    },
    "openllmetry-0.47": {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "o3",
        "gen_ai.response.model": "o3-2025-04-16",
        "gen_ai.usage.prompt_tokens": 5000,
        "gen_ai.usage.cache_read_input_tokens": 3000,
        "gen_ai.usage.cache_creation_input_tokens": 500,
        "gen_ai.usage.completion_tokens": 900,
        "llm.usage.reasoning_tokens": 600,
        "llm.usage.total_tokens": 5900,
    },
    "openinference": {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "o3-2025-04-16",
        "llm.token_count.prompt": 5000,
        "llm.token_count.prompt_details.cache_read": 3000,
        "llm.token_count.prompt_details.cache_write": 500,
        "llm.token_count.completion": 900,
        "llm.token_count.completion_details.reasoning": 600,
        "llm.token_count.total": 5900,
        "input.value": "my secret prompt",
    },
}


@pytest.mark.parametrize("name", sorted(ATTRIBUTE_SETS))
def test_each_attribute_naming_gives_the_same_inclusive_buckets(store: Store, name: str) -> None:
    recorder = Recorder()
    recorder.step("llm call", ATTRIBUTE_SETS[name], None, 1_000)
    conversion = recorder.convert()
    [record] = usage(conversion)
    assert (record.provider, record.model) == ("openai", "o3-2025-04-16")
    assert record.token_counts() == TokenCounts(5000, 3000, 500, 900, 600)
    assert "secret" not in json.dumps(conversion.records)
    ingest(store, conversion.records)
    [summary] = store.tasks()
    assert summary.cost_nanousd == catalog_cost(record)[0] > 0


@pytest.mark.parametrize(
    ("reported", "normalised"),
    [
        # (input, cache read, cache write, output, reasoning) as reported -> inclusive.
        ((10, 1000, 200, 50, 0), (1210, 1000, 200, 50, 0)),  # Anthropic: cache outside input
        ((1000, 1000, 0, 50, 80), (1000, 1000, 0, 130, 80)),  # equal is inclusive; thoughts out
        ((1500, 1000, 200, 300, 100), (1500, 1000, 200, 300, 100)),  # inclusive, unchanged
        ((0, 0, 0, 0, 0), (0, 0, 0, 0, 0)),
    ],
)
def test_totals_that_exclude_their_parts_are_made_inclusive(
    store: Store, reported: tuple[int, ...], normalised: tuple[int, ...]
) -> None:
    keys = (
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.reasoning.output_tokens",
    )
    attributes = {
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-sonnet-4-20250514",
        **dict(zip(keys, reported, strict=True)),
    }
    recorder = Recorder()
    recorder.step("chat", attributes, None, 1_000)
    [record] = usage(recorder.convert())
    assert record.token_counts() == TokenCounts(*normalised)
    report = ingest(store, [msgspec.to_builtins(record)])
    assert report.accepted == 1
    assert store.tasks()[0].cost_nanousd == catalog_cost(record)[0]


def test_counts_sent_as_strings_are_read_and_bad_counts_refused() -> None:
    recorder = Recorder()
    recorder.step(
        "chat",
        {**CHAT, "gen_ai.usage.input_tokens": "1200", "gen_ai.usage.output_tokens": "300"},
        None,
        1_000,
    )
    bad = {
        "negative": {**CHAT, "gen_ai.usage.output_tokens": -3},
        "fraction": {**CHAT, "gen_ai.usage.output_tokens": "2.5"},
        "double": {**CHAT, "gen_ai.usage.output_tokens": 300.0},
        "signed": {**CHAT, "gen_ai.usage.input_tokens": "+1200"},
        "boolean": {**CHAT, "gen_ai.usage.input_tokens": True},
    }
    refused_spans = [recorder.step(name, attrs, None, 1_000) for name, attrs in bad.items()]
    conversion = recorder.convert()
    [record] = usage(conversion)
    assert record.token_counts() == TokenCounts(1200, 1000, 0, 300, 0)
    reasons = reasons_by_span(conversion)
    assert set(reasons) == {hex_id(span) for span in refused_spans}
    text = " | ".join(reasons.values())
    assert "`gen_ai.usage.output_tokens` must be a non-negative integer count, got int -3" in text
    assert "got str '2.5'" in text
    assert "got double value" in text
    assert "got str '+1200'" in text
    assert "got bool True" in text


# -- providers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attributes", "provider", "model"),
    [
        ({"gen_ai.provider.name": "gcp.gemini"}, "google", "gemini-2.5-flash"),
        ({"gen_ai.provider.name": "gcp.vertex_ai"}, "google", "gemini-2.5-flash"),
        ({"gen_ai.provider.name": "gcp.gen_ai"}, "google", "gemini-2.5-flash"),
        ({"gen_ai.system": "vertex_ai"}, "google", "gemini-2.5-flash"),
        (
            {"gen_ai.provider.name": "aws.bedrock"},
            "aws",
            "anthropic.claude-3-5-sonnet-20240620-v1:0",
        ),
        ({"gen_ai.provider.name": "azure.ai.openai"}, "azure", "gpt-4o"),
        ({"gen_ai.system": "az.ai.openai"}, "azure", "gpt-4o"),
        ({"gen_ai.provider.name": "x_ai"}, "x-ai", "grok-3"),
        ({"gen_ai.provider.name": "mistral_ai"}, "mistral", "mistral-large-latest"),
        ({"gen_ai.system": "Anthropic"}, "anthropic", "claude-sonnet-4-20250514"),
        ({"llm.provider": "aws", "llm.system": "anthropic"}, "aws", "amazon.nova-pro-v1:0"),
        # The billed provider is named first, then the deprecated system.
        ({"gen_ai.provider.name": "azure.ai.openai", "gen_ai.system": "openai"}, "azure", "gpt-4o"),
    ],
)
def test_otel_provider_names_map_to_the_catalog(
    store: Store, attributes: dict[str, str], provider: str, model: str
) -> None:
    recorder = Recorder()
    recorder.step(
        "chat",
        {**attributes, "gen_ai.request.model": model, "gen_ai.usage.input_tokens": 100},
        None,
        1_000,
    )
    [record] = usage(recorder.convert())
    assert record.provider == provider
    assert ingest(store, [msgspec.to_builtins(record)]).unpriced == 0
    assert store.tasks()[0].cost_nanousd == catalog_cost(record)[0] > 0


def test_an_unknown_provider_passes_through_and_is_counted_unpriced(store: Store) -> None:
    recorder = Recorder()
    recorder.step("chat", {**CHAT, "gen_ai.provider.name": "Acme-LLM"}, None, 1_000)
    conversion = recorder.convert()
    [record] = usage(conversion)
    assert record.provider == "Acme-LLM"
    report = ingest(store, conversion.records)
    assert (report.accepted, report.unpriced) == (1, 1)


def test_a_span_naming_no_provider_or_model_is_refused() -> None:
    recorder = Recorder()
    no_provider = {k: v for k, v in CHAT.items() if k != "gen_ai.provider.name"}
    no_model = {k: v for k, v in CHAT.items() if not k.endswith(".model")}
    a = recorder.step("chat", no_provider, None, 1_000)
    b = recorder.step("chat", no_model, None, 1_000)
    reasons = reasons_by_span(recorder.convert())
    assert reasons[hex_id(a)].startswith("names no provider")
    assert reasons[hex_id(b)].startswith("names no model")


# -- tasks, customers, visibility ----------------------------------------------------------


def test_a_conversation_id_is_the_task_across_traces(store: Store) -> None:
    recorder = Recorder()
    for turn in range(2):
        root = recorder.start("invoke_agent", {**AGENT, "gen_ai.conversation.id": "conv_42"})
        recorder.step("chat", {**CHAT, "gen_ai.conversation.id": "conv_42"}, root, 1_000 + turn)
        end(root, 2_000 + turn)
    conversion = recorder.convert()
    records = usage(conversion)
    assert [r.task for r in records] == ["conv_42", "conv_42"]
    assert [r.visible for r in records] == [True, True]  # each turn's answer is seen
    # One turn's end is not the conversation's: no task record, so no conflict next turn.
    assert tasks(conversion) == []
    report = ingest(store, conversion.records)
    assert (report.accepted, report.conflicts) == (2, 0)
    [summary] = store.tasks()
    assert (summary.id, summary.steps, summary.status) == ("conv_42", 2, "open")


def test_the_customer_comes_from_the_span_else_the_resource() -> None:
    recorder = Recorder({"payoff.customer": "acme", "service.name": "agents"})
    on_resource = recorder.step("chat", CHAT, None, 1_000)
    own = recorder.step("chat", {**CHAT, "payoff.customer": "globex"}, None, 1_000)
    end_user = recorder.step("chat", {**CHAT, "enduser.id": "initech"}, None, 1_000)
    both = recorder.step(
        "chat", {**CHAT, "enduser.id": "person-7", "payoff.customer": "umbrella"}, None, 1_000
    )
    numeric = recorder.step("chat", {**CHAT, "enduser.id": 4711}, None, 1_000)
    customers = {r.id.rsplit("-", 1)[1]: r.customer for r in usage(recorder.convert())}
    assert customers == {
        hex_id(on_resource): "acme",
        hex_id(own): "globex",
        hex_id(end_user): "initech",
        hex_id(both): "umbrella",
        hex_id(numeric): "4711",
    }
    end_user_resource = Recorder({"enduser.id": "hooli"})
    end_user_resource.step("chat", CHAT, None, 1_000)
    [record] = usage(end_user_resource.convert())
    assert record.customer == "hooli"


def test_a_genai_span_without_a_customer_is_refused_not_dropped() -> None:
    recorder = Recorder({"service.name": "agents"})
    _, (plan, tool, answer) = agent_trace(recorder)
    conversion = recorder.convert()
    assert conversion.records == []  # and no empty task closed for the run
    refused = reasons_by_span(conversion)
    assert set(refused) == {hex_id(s) for s in (plan, tool, answer)}
    assert refused[hex_id(answer)] == (
        "has no customer: set `payoff.customer` or `enduser.id` on the span, an ancestor "
        "span or the resource"
    )
    assert {r.code for r in conversion.refused} == {"no_customer"}


def test_spans_that_are_not_steps_are_ignored_and_counted() -> None:
    recorder = Recorder()
    request = recorder.start("POST /chat", {"http.request.method": "POST"})
    recorder.step("SELECT", {"db.system.name": "postgresql"}, request, 100)
    recorder.step("chat gpt-4o", CHAT, request, 300)
    end(request, 400)
    conversion = recorder.convert()
    assert (conversion.spans, conversion.ignored, len(conversion.records)) == (3, 2, 1)
    assert conversion.refused == []


def test_usage_on_an_agent_span_is_the_sum_of_its_calls_and_not_billed_again() -> None:
    recorder = Recorder()
    totals = {"gen_ai.usage.input_tokens": 3700, "gen_ai.usage.output_tokens": 720}
    root = recorder.start("invoke_agent support", {**AGENT, **totals})
    recorder.step("chat", CHAT, root, 1_000)
    chain = {"openinference.span.kind": "CHAIN", "llm.token_count.prompt": 1200}
    recorder.step("chain", chain, root, 1_500)
    workflow = {"gen_ai.operation.name": "invoke_workflow", **totals}
    recorder.step("invoke_workflow", workflow, root, 1_600)
    end(root, 2_000)
    conversion = recorder.convert()
    assert [r.input_tokens for r in usage(conversion)] == [1200]
    assert len(tasks(conversion)) == 1
    assert conversion.ignored == 2  # the OpenInference chain and the workflow


def test_the_application_can_say_which_step_is_visible() -> None:
    recorder = Recorder()
    root = recorder.start("invoke_agent", AGENT)
    answer = recorder.step("chat", {**CHAT, "payoff.visible": True}, root, 1_000)
    check = recorder.step("chat", CHAT, root, 2_000)  # a guardrail after the answer
    end(root, 3_000)
    visible = {r.id.rsplit("-", 1)[1]: r.visible for r in usage(recorder.convert())}
    # Told on one step, payoff guesses nothing else under that agent run.
    assert visible == {hex_id(answer): True, hex_id(check): False}


def test_visibility_needs_the_root_agent_span_in_the_same_export() -> None:
    recorder = Recorder()
    agent_trace(recorder)
    # The BatchSpanProcessor may send the calls before their agent run has ended.
    conversion = recorder.convert(recorder.exporter.get_finished_spans()[:-1])
    assert [r.visible for r in usage(conversion)] == [False, False, False]
    assert [r.task_type for r in usage(conversion)] == [None, None, None]
    assert tasks(conversion) == []
    # A trace with no agent run at all: nothing is visible either.
    plain = Recorder()
    plain.step("chat", CHAT, None, 1_000)
    assert [r.visible for r in usage(plain.convert())] == [False]


def test_an_agent_run_inside_a_request_span_is_the_root_and_sub_agents_are_not() -> None:
    recorder = Recorder()
    request = recorder.start("POST /chat", {"http.request.method": "POST"})
    root = recorder.start("invoke_agent support", AGENT, request)
    sub = recorder.start(
        "invoke_agent researcher", {**AGENT, "gen_ai.agent.name": "researcher"}, root
    )
    recorder.step("chat", CHAT, sub, 1_000)
    end(sub, 1_500)
    answer = recorder.step("chat", CHAT, root, 2_000)
    end(root, 2_500)
    end(request, 3_000)
    conversion = recorder.convert()
    records = usage(conversion)
    assert [r.visible for r in records] == [False, True]
    assert records[1].id.endswith(hex_id(answer))
    assert {r.task_type for r in records} == {"support"}
    [task] = tasks(conversion)
    assert (task.type, task.time.isoformat()) == ("support", "2026-11-03T10:00:02.500000+00:00")


def test_an_agent_run_with_a_remote_parent_is_a_root() -> None:
    recorder = Recorder()
    caller = SpanContext(
        trace_id=0x5B8EFFF798038103D269B633813FC60C,
        span_id=0xEEE19B7EC3C1B173,
        is_remote=True,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    root = recorder.start("invoke_agent", AGENT, NonRecordingSpan(caller))
    recorder.step("chat", CHAT, root, 1_000)
    end(root, 2_000)
    conversion = recorder.convert()
    assert [r.visible for r in usage(conversion)] == [True]
    [task] = tasks(conversion)
    assert task.id == "5b8efff798038103d269b633813fc60c"


def test_task_type_from_the_span_or_resource_beats_the_agent_name() -> None:
    recorder = Recorder({"payoff.customer": "acme", "payoff.task_type": "support.ticket"})
    root = recorder.start("invoke_agent", AGENT)
    recorder.step("chat", CHAT, root, 1_000)
    recorder.step("chat", {**CHAT, "payoff.task_type": "triage"}, root, 2_000)
    end(root, 3_000)
    conversion = recorder.convert()
    assert [r.task_type for r in usage(conversion)] == ["support.ticket", "triage"]
    assert tasks(conversion)[0].type == "support.ticket"


def test_time_is_the_span_end_to_the_microsecond() -> None:
    recorder = Recorder()
    span = recorder.start("chat", CHAT)
    span.end(end_time=NOV_3_NS + 1_234_567_891)
    [record] = usage(recorder.convert())
    assert record.time.isoformat() == "2026-11-03T10:00:01.234567+00:00"
    assert convert(recorder.body()).records[0]["time"] == "2026-11-03T10:00:01.234567Z"


def test_a_tool_cost_that_is_not_a_plain_decimal_string_is_refused() -> None:
    recorder = Recorder()
    for cost in ("0.0040000001", "1e-3", 0.004):
        recorder.step("execute_tool", {**TOOL, "payoff.cost": cost}, None, 1_000)
    recorder.step("execute_tool", {**TOOL, "payoff.cost": 2}, None, 1_000)
    conversion = recorder.convert()
    assert [r.cost for r in usage(conversion)] == ["2"]
    assert len(conversion.refused) == 3
    assert all("`payoff.cost` must be a decimal string" in r for _, _, r in conversion.refused)


# -- OTLP JSON -----------------------------------------------------------------------------


def otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """The OTLP JSON encoding: the protobuf JSON mapping, but with ids in hex."""
    document = MessageToDict(request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for name in ("traceId", "spanId", "parentSpanId"):
                    if name in span:
                        span[name] = base64.b64decode(span[name]).hex()
    return json.dumps(document).encode()


def test_otlp_json_gives_the_same_records_as_protobuf() -> None:
    recorder = Recorder()
    agent_trace(recorder)
    recorder.step("chat", ATTRIBUTE_SETS["openllmetry"], None, 4_000)
    request = recorder.request()
    from_protobuf = convert(request.SerializeToString())
    from_json = convert(otlp_json(request), "application/json; charset=utf-8")
    assert from_json.records == from_protobuf.records
    assert len(from_json.records) == 5


HAND_WRITTEN = b"""{
  "resourceSpans": [{
    "resource": {"attributes": [
      {"key": "service.name", "value": {"stringValue": "support-bot"}},
      {"key": "payoff.customer", "value": {"stringValue": "acme"}}
    ]},
    "scopeSpans": [{
      "scope": {"name": "my.agent", "version": "1.0"},
      "spans": [
        {
          "traceId": "5B8EFFF798038103D269B633813FC60C",
          "spanId": "EEE19B7EC3C1B174",
          "name": "invoke_agent support",
          "kind": 1,
          "startTimeUnixNano": "1793700000000000000",
          "endTimeUnixNano": 1793700004000000000,
          "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "invoke_agent"}},
            {"key": "gen_ai.agent.name", "value": {"stringValue": "support"}}
          ],
          "status": {"code": 2, "message": "gave up"},
          "someFutureField": {"ignored": true}
        },
        {
          "traceId": "5b8efff798038103d269b633813fc60c",
          "spanId": "0102030405060708",
          "parentSpanId": "eee19b7ec3c1b174",
          "name": "chat claude-sonnet-4",
          "kind": "SPAN_KIND_CLIENT",
          "startTimeUnixNano": "1793700001000000000",
          "endTimeUnixNano": "1793700002500000000",
          "attributes": [
            {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
            {"key": "gen_ai.provider.name", "value": {"stringValue": "anthropic"}},
            {"key": "gen_ai.request.model", "value": {"stringValue": "claude-sonnet-4-20250514"}},
            {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "12"}},
            {"key": "gen_ai.usage.cache_read.input_tokens", "value": {"intValue": 2000}},
            {"key": "gen_ai.usage.output_tokens", "value": {"intValue": "350"}},
            {"key": "gen_ai.input.messages", "value": {"stringValue": "secret"}}
          ],
          "status": {}
        }
      ]
    }]
  }]
}"""


def test_a_hand_written_otlp_json_export() -> None:
    conversion = convert(HAND_WRITTEN, JSON)
    trace_id = "5b8efff798038103d269b633813fc60c"
    assert conversion.refused == []
    assert conversion.records == [
        {
            "record": "usage",
            "id": f"otel-{trace_id}-0102030405060708",
            "time": "2026-11-03T10:00:02.500000Z",
            "customer": "acme",
            "task": trace_id,
            "kind": "llm",
            "attributes": {
                "otel.span_name": "chat claude-sonnet-4",
                "otel.scope.name": "my.agent",
                "gen_ai.operation.name": "chat",
            },
            "task_type": "support",
            "provider": "anthropic",
            "model": "claude-sonnet-4-20250514",
            "input_tokens": 2012,  # the cache read was outside the total: added
            "cache_read_tokens": 2000,
            "cache_write_tokens": 0,
            "output_tokens": 350,
            "reasoning_tokens": 0,
            "visible": True,
        },
        {
            "record": "task",
            "id": trace_id,
            "customer": "acme",
            "status": "failed",
            "time": "2026-11-03T10:00:04.000000Z",
            "type": "support",
        },
    ]


# -- bad bodies ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"\xff\xfe garbage \x00", PROTOBUF, "not a protobuf ExportTraceServiceRequest"),
        (b"\x98\x06\x01", PROTOBUF, "holds no resourceSpans"),  # only an unknown field
        (b'{"resourceSpans": []}', "text/plain", "unsupported content type 'text/plain'"),
        (b"", "", "unsupported content type ''"),
        (b'{"resourceSpans": [', JSON, "not valid JSON"),
        (b"\xff\xfe\xfa", JSON, "not valid JSON"),
        (b"[]", JSON, "an object with `resourceSpans`, not a list"),
        (b'{"resourceSpans": {"x": 1}}', JSON, "not an OTLP JSON trace export"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": '
            b'[{"traceId": "W47/95gDgQPSabYzgT/GDA=="}]}]}]}',
            JSON,
            "resourceSpans[0].scopeSpans[0].spans[0].traceId: str 'W47/95gDgQPSabYzgT/GDA==' "
            "is not an even number of hex digits (OTLP JSON encodes ids as hex, not base64)",
        ),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"endTimeUnixNano": "soon"}]}]}]}',
            JSON,
            "not an OTLP JSON trace export",
        ),
    ],
)
def test_a_bad_body_raises_a_clear_otlp_error(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(OtlpError) as raised:
        parse_export(body, content_type)
    assert message in str(raised.value)
    assert isinstance(raised.value, PayoffError)


def test_empty_exports_are_valid() -> None:
    for body, content_type in ((b"", PROTOBUF), (b"{}", JSON), (b'{"resourceSpans": []}', JSON)):
        conversion = records_from_export(parse_export(body, content_type))
        assert (conversion.records, conversion.spans, conversion.refused) == ([], 0, [])


# -- spans no SDK would send ---------------------------------------------------------------

TRACE_ID = bytes(range(1, 17))
MODEL_CALL: dict[str, object] = {
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4o",
    "payoff.customer": "acme",
}


def any_value(value: object) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    assert isinstance(value, list)
    return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))


def key_values(attributes: dict[str, object]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def proto_span(
    attributes: dict[str, object],
    *,
    span_id: bytes = bytes(range(1, 9)),
    parent: bytes = b"",
    trace_id: bytes = TRACE_ID,
    end_ns: int = NOV_3_NS,
) -> ProtoSpan:
    """A span built directly with the OTLP protobuf classes."""
    return ProtoSpan(
        trace_id=trace_id,
        span_id=span_id,
        parent_span_id=parent,
        name="chat",
        end_time_unix_nano=end_ns,
        attributes=key_values(attributes),
    )


def proto_export(
    *spans: ProtoSpan, resource: dict[str, object] | None = None
) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=ProtoResource(attributes=key_values(resource or {})),
                scope_spans=[ScopeSpans(spans=spans)],
            )
        ]
    )


@pytest.mark.parametrize(
    ("span", "resource", "reason"),
    [
        (
            proto_span({**MODEL_CALL, "gen_ai.usage.input_tokens": 1}, trace_id=bytes(8)),
            None,
            "has an invalid trace or span id",
        ),
        (
            proto_span({**MODEL_CALL, "gen_ai.usage.input_tokens": 1}, span_id=bytes(8)),
            None,
            "has an invalid trace or span id",
        ),
        (
            proto_span({**MODEL_CALL, "gen_ai.usage.input_tokens": 1}, end_ns=0),
            None,
            "has no end time",
        ),
        (
            proto_span({**MODEL_CALL, "gen_ai.usage.input_tokens": 10**10 + 1}),
            None,
            "counts more than 10,000,000,000 input or output tokens in one call",
        ),
        (
            proto_span({**MODEL_CALL, "payoff.customer": "x" * 256, "llm.token_count.prompt": 1}),
            None,
            "`payoff.customer` is longer than 255 characters",
        ),
        (
            proto_span({**MODEL_CALL, "payoff.customer": ["acme"], "llm.token_count.prompt": 1}),
            None,
            "`payoff.customer` must be a string, got array value",
        ),
        (
            proto_span({**MODEL_CALL, "payoff.visible": "yes", "gen_ai.usage.output_tokens": 1}),
            None,
            "`payoff.visible` must be a boolean, got str 'yes'",
        ),
        (
            proto_span({"gen_ai.operation.name": "execute_tool"}),
            {"enduser.id": ["a", "b"]},
            "its resource's `enduser.id` must be a string, got array value",
        ),
    ],
)
def test_a_span_that_cannot_make_a_valid_record_is_refused_with_its_reason(
    span: ProtoSpan, resource: dict[str, object] | None, reason: str
) -> None:
    conversion = records_from_export(proto_export(span, resource=resource))
    assert conversion.records == []
    [(span_id, _, refusal)] = conversion.refused
    assert span_id == span.span_id.hex()
    assert reason in refusal


def test_a_cycle_of_parents_is_not_judged_and_does_not_hang() -> None:
    a, b, c = (bytes([n]) * 8 for n in (1, 2, 3))
    agent = {**MODEL_CALL, "gen_ai.operation.name": "invoke_agent"}
    call = {**MODEL_CALL, "gen_ai.usage.input_tokens": 5}
    conversion = convert(
        proto_export(
            proto_span(agent, span_id=a, parent=b),
            proto_span(call, span_id=b, parent=a),
            proto_span(call, span_id=c, parent=c),
        ).SerializeToString()
    )
    records = usage(conversion)
    assert [r.visible for r in records] == [False, False]
    assert tasks(conversion) == []


def test_a_deep_trace_is_judged_whatever_the_order_of_its_spans() -> None:
    depth = 3_000
    ids = [n.to_bytes(8, "big") for n in range(1, depth + 1)]
    chain = [proto_span({**MODEL_CALL, "gen_ai.operation.name": "invoke_agent"}, span_id=ids[0])]
    chain += [
        proto_span({"step": n}, span_id=ids[n], parent=ids[n - 1]) for n in range(1, depth - 1)
    ]
    chain.append(
        proto_span({**MODEL_CALL, "gen_ai.usage.input_tokens": 5}, span_id=ids[-1], parent=ids[-2])
    )
    for ordered in (chain, chain[::-1]):
        conversion = records_from_export(proto_export(*ordered))
        assert [r["visible"] for r in conversion.records if r["record"] == "usage"] == [True]
        assert conversion.ignored == depth - 2


# -- the buckets hold for any counts -------------------------------------------------------


COUNT = st.integers(min_value=0, max_value=10**9)


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "gen_ai.usage.input_tokens": COUNT,
            "gen_ai.usage.cache_read.input_tokens": COUNT,
            "gen_ai.usage.cache_creation.input_tokens": COUNT,
            "gen_ai.usage.output_tokens": COUNT,
            "gen_ai.usage.reasoning.output_tokens": COUNT,
        },
    )
)
def test_parts_never_exceed_totals_and_totals_never_shrink(counts: dict[str, int]) -> None:
    conversion = convert(proto_export(proto_span({**MODEL_CALL, **counts})).SerializeToString())
    if not counts:
        assert (conversion.records, conversion.ignored) == ([], 1)
        return
    [record] = usage(conversion)
    got = record.token_counts()
    assert got.cache_read + got.cache_write <= got.input
    assert got.reasoning <= got.output
    assert got.input >= counts.get("gen_ai.usage.input_tokens", 0)
    assert got.output >= counts.get("gen_ai.usage.output_tokens", 0)
    assert got.cache_read == counts.get("gen_ai.usage.cache_read.input_tokens", 0)


def test_the_conversion_is_deterministic() -> None:
    recorder = Recorder()
    agent_trace(recorder)
    request = recorder.request()
    copied = ExportTraceServiceRequest()
    copied.CopyFrom(request)
    assert records_from_export(request) == records_from_export(copy.deepcopy(copied))


# -- the names of every client, and what runs decide ---------------------------------------


def test_cache_writes_and_pydantic_ai_reasoning_details_are_read() -> None:
    recorder = Recorder()
    recorder.step(
        "chat claude",
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-5",
            "gen_ai.usage.input_tokens": 5_000,
            "gen_ai.usage.cache_write.input_tokens": 4_000,
            "gen_ai.usage.output_tokens": 700,
            "gen_ai.usage.details.reasoning_tokens": 300,
        },
        None,
        1_000,
    )
    [record] = usage(recorder.convert())
    assert record.token_counts() == TokenCounts(5_000, 0, 4_000, 700, 300)


AI_SDK_STEP = {
    "ai.operationId": "ai.generateText.doGenerate",
    "gen_ai.system": "openai.responses",
    "gen_ai.request.model": "gpt-4o",
    "gen_ai.usage.input_tokens": 2_000,
    "gen_ai.usage.output_tokens": 400,
    "ai.usage.inputTokenDetails.cacheReadTokens": 1_500,
    "ai.usage.inputTokenDetails.cacheWriteTokens": 100,
    "ai.usage.outputTokenDetails.reasoningTokens": 250,
    "ai.telemetry.metadata.customer": "northwind",
    "ai.telemetry.metadata.task_type": "report.draft",
}


def test_the_ai_sdk_names_its_buckets_provider_customer_and_task_type() -> None:
    recorder = Recorder({})
    run = {
        "ai.operationId": "ai.generateText",
        "ai.telemetry.functionId": "drafter",
        "ai.usage.inputTokens": 2_000,  # the call's total: never billed again
        "ai.telemetry.metadata.customer": "northwind",
    }
    root = recorder.start("ai.generateText", run)
    recorder.step("ai.generateText.doGenerate", AI_SDK_STEP, root, 1_000)
    tool = {"ai.operationId": "ai.toolCall", "ai.toolCall.name": "lookup"}
    recorder.step("ai.toolCall", tool, root, 1_200)
    end(root, 1_500)
    conversion = recorder.convert()
    [call, tool_step] = usage(conversion)
    assert (call.provider, call.customer, call.task_type) == ("openai", "northwind", "report.draft")
    assert call.token_counts() == TokenCounts(2_000, 1_500, 100, 400, 250)
    assert call.visible  # the last model call of the AI SDK call
    assert (tool_step.kind, tool_step.attributes) == ("tool", tool_step.attributes)
    assert tool_step.attributes is not None and tool_step.attributes["gen_ai.tool.name"] == "lookup"
    [task] = tasks(conversion)
    assert (task.customer, task.status) == ("northwind", "completed")


def test_the_ai_sdk_metadata_under_payoff_names_customer_and_task_type() -> None:
    """`metadata: {"payoff.customer": ..., "payoff.task_type": ...}` as payoff's own names."""
    recorder = Recorder({"payoff.customer": "resource-default"})
    metadata = {
        "ai.telemetry.metadata.payoff.customer": "globex",
        "ai.telemetry.metadata.payoff.task_type": "support.ticket",
    }
    run = {"ai.operationId": "ai.generateText", "ai.telemetry.functionId": "support", **metadata}
    root = recorder.start("ai.generateText", run)
    step = {k: v for k, v in AI_SDK_STEP.items() if "metadata" not in k}
    recorder.step("ai.generateText.doGenerate", {**step, **metadata}, root, 1_000)
    end(root, 1_500)
    conversion = recorder.convert()
    [call] = usage(conversion)
    assert (call.customer, call.task_type) == ("globex", "support.ticket")
    [task] = tasks(conversion)
    assert (task.customer, task.type, task.status) == ("globex", "support.ticket", "completed")


@pytest.mark.parametrize(
    ("provider", "billed"),
    [
        ("openai.chat", "openai"),
        ("openai.responses", "openai"),
        ("anthropic.messages", "anthropic"),
        ("google.generative-ai", "google"),
        ("google.vertex.chat", "google"),
        ("azure.responses", "azure"),
        ("xai.chat", "x-ai"),
        ("mistral.chat", "mistral"),
        ("amazonBedrock", "aws"),
        ("someone.else", "someone.else"),
    ],
)
def test_ai_sdk_provider_ids_map_to_the_billing_provider(provider: str, billed: str) -> None:
    recorder = Recorder()
    recorder.step("doGenerate", {**AI_SDK_STEP, "gen_ai.system": provider}, None, 1_000)
    [record] = usage(recorder.convert())
    assert record.provider == billed


def test_ai_sdk_metadata_visible_false_keeps_a_call_from_being_the_answer() -> None:
    recorder = Recorder()
    root = recorder.start("invoke_agent", AGENT)
    answer = recorder.step("answer", AI_SDK_STEP, root, 1_000)
    check = {**AI_SDK_STEP, "ai.telemetry.metadata.visible": False}
    recorder.step("guardrail", check, root, 2_000)
    end(root, 2_500)
    visible = [r.id for r in usage(recorder.convert()) if r.visible]
    assert visible == [f"otel-{hex_id(root, 'trace')}-{hex_id(answer)}"]


def test_openinference_agents_tools_users_and_sessions() -> None:
    recorder = Recorder({})
    agent = {"openinference.span.kind": "AGENT", "user.id": "u-42", "session.id": "s-7"}
    root = recorder.start("agent", agent)
    llm = {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.model_name": "gpt-4o",
        "llm.token_count.prompt": 900,
        "llm.token_count.completion": 120,
        "llm.token_count.prompt_details.cache_write": 300,
    }
    recorder.step("llm", llm, root, 1_000)
    recorder.step("tool", {"openinference.span.kind": "TOOL", "tool.name": "search"}, root, 1_200)
    end(root, 1_500)
    conversion = recorder.convert()
    call, tool = usage(conversion)
    assert (call.customer, call.task, call.visible) == ("u-42", "s-7", True)
    assert call.token_counts() == TokenCounts(900, 0, 300, 120, 0)
    assert (tool.kind, tool.task) == ("tool", "s-7")
    assert tasks(conversion) == []  # a session closes when it goes quiet
    assert conversion.conversations["s-7"].customer == "u-42"


def test_customer_and_task_type_come_from_the_nearest_ancestor_of_the_run() -> None:
    recorder = Recorder({"payoff.customer": "resource-default"})
    request = recorder.start("POST /chat", {"payoff.customer": "globex"})
    agent = recorder.start("invoke_agent", {**AGENT, "payoff.task_type": "triage"}, request)
    inner = recorder.start("plan", {"payoff.customer": "acme"}, agent)
    recorder.step("chat", CHAT, inner, 1_000)
    recorder.step("chat", CHAT, agent, 2_000)
    end(inner, 1_100)
    end(agent, 2_500)
    end(request, 3_000)
    conversion = recorder.convert()
    first, second = usage(conversion)
    assert (first.customer, second.customer) == ("acme", "globex")
    assert {first.task_type, second.task_type} == {"triage"}
    [task] = tasks(conversion)
    assert (task.customer, task.type) == ("globex", "triage")


def test_a_model_call_without_usage_is_an_unpriced_step_and_stays_the_answer(
    store: Store,
) -> None:
    recorder = Recorder()
    root = recorder.start("invoke_agent", AGENT)
    recorder.step("chat", CHAT, root, 1_000)
    streamed = {k: v for k, v in CHAT.items() if "usage" not in k}
    answer = recorder.step("chat", streamed, root, 2_000)
    end(root, 2_500)
    conversion = recorder.convert()
    first, last = usage(conversion)
    assert (first.kind, first.visible) == ("llm", False)
    assert (last.kind, last.unit, last.model, last.visible) == (
        "custom",
        "llm_call_without_usage",
        "gpt-4o-2024-08-06",
        True,
    )
    assert last.id.endswith(hex_id(answer))
    report = ingest(store, conversion.records)
    assert (report.accepted, report.unpriced) == (3, 1)
    [task] = store.tasks()
    assert (task.unpriced_steps, task.tokens_visible) == (1, 0)


# -- one call traced twice ------------------------------------------------------------------

CLAUDE_CALL = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-6",
    "gen_ai.response.id": "msg_plan",
    "gen_ai.usage.input_tokens": 1_907,
    "gen_ai.usage.cache_write.input_tokens": 1_893,
    "gen_ai.usage.output_tokens": 412,
}
CLAUDE_SDK_CALL = {**CLAUDE_CALL, "gen_ai.usage.cache_read.input_tokens": 0}
"""The anthropic SDK's own span of the same call: one bucket more (a zero it reports)."""


@pytest.mark.parametrize("shape", ["nested", "siblings"])
def test_one_call_traced_by_the_sdk_and_an_instrumentation_is_billed_once(
    store: Store, shape: str
) -> None:
    """anthropic >= 2.14 traces each call itself: below the instrumentation's span of it
    (opentelemetry-instrumentation-genai-anthropic) or beside it (OpenLLMetry)."""
    recorder = Recorder()
    root = recorder.start("invoke_agent support", AGENT)
    plan = recorder.start("chat claude-sonnet-4-6", CLAUDE_CALL, root, 0)
    sdk_parent = plan if shape == "nested" else root
    sdk = recorder.step("anthropic.messages.create", CLAUDE_SDK_CALL, sdk_parent, 900)
    end(plan, 1_000)
    answer = {**CLAUDE_CALL, "gen_ai.response.id": "msg_answer", "gen_ai.usage.output_tokens": 90}
    last = recorder.step("chat claude-sonnet-4-6", answer, root, 2_000)
    recorder.step("anthropic.messages.create", answer, root if shape == "siblings" else last, 1_900)
    end(root, 2_500)
    spans = list(recorder.exporter.get_finished_spans())
    conversion = recorder.convert(spans)
    steps = usage(conversion)
    assert len(steps) == 2 and conversion.ignored == 2
    # The span reporting more buckets is kept; on a tie, the lowest span id.
    first, second = (record.id.rsplit("-", 1)[1] for record in steps)
    assert first == hex_id(sdk)
    assert second == min(hex_id(span) for span in spans if span.name != "invoke_agent support"
                         and span.attributes["gen_ai.response.id"] == "msg_answer")  # fmt: skip
    assert [record.visible for record in steps] == [False, True]
    # Whatever the order of the spans in the export, the same spans are kept.
    assert usage(recorder.convert(spans[::-1])) == steps
    ingest(store, conversion.records)
    [task] = store.tasks()
    assert (task.steps, task.tokens_total) == (2, 1_907 + 412 + 1_907 + 90)


def test_calls_traced_twice_are_told_apart_by_trace_provider_and_response_id() -> None:
    recorder = Recorder()
    root = recorder.start("invoke_agent support", AGENT)
    recorder.step("chat", CLAUDE_CALL, root, 1_000)
    other_provider = {**CLAUDE_CALL, "gen_ai.provider.name": "aws.bedrock"}
    recorder.step("chat", other_provider, root, 1_100)
    recorder.step("chat", {**CLAUDE_CALL, "gen_ai.response.id": "msg_other"}, root, 1_200)
    no_id = {k: v for k, v in CLAUDE_CALL.items() if k != "gen_ai.response.id"}
    recorder.step("chat", no_id, root, 1_300)
    recorder.step("chat", no_id, root, 1_400)
    end(root, 1_500)
    other_trace = recorder.start("invoke_agent support", AGENT)
    recorder.step("chat", CLAUDE_CALL, other_trace, 2_000)
    end(other_trace, 2_500)
    assert len(usage(recorder.convert())) == 6


# -- usage details: record format v2 ----------------------------------------------------------

GEMINI_AUDIO = {
    "gen_ai.operation.name": "generate_content",
    "gen_ai.provider.name": "gcp.gemini",
    "gen_ai.request.model": "gemini-2.5-flash",
    "gen_ai.usage.input_tokens": 1_000,
    "gen_ai.usage.cache_read.input_tokens": 600,
    "gen_ai.usage.output_tokens": 300,
    "gen_ai.usage.reasoning.output_tokens": 100,
}
CLAUDE_1H = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "anthropic",
    "gen_ai.request.model": "claude-sonnet-4-5",
    "gen_ai.usage.input_tokens": 5_000,
    "gen_ai.usage.cache_write.input_tokens": 4_000,
    "gen_ai.usage.output_tokens": 700,
}
DETAILED_SPANS: dict[str, tuple[dict[str, Any], dict[str, int]]] = {
    # (span attributes, the record format v2 fields they make)
    "semconv modalities (google-genai)": (
        {
            **GEMINI_AUDIO,
            "gen_ai.usage.text.input_tokens": 200,
            "gen_ai.usage.audio.input_tokens": 800,
            "gen_ai.usage.audio.cache_read.input_tokens": 600,
            "gen_ai.usage.image.output_tokens": 150,
        },
        {"input_audio_tokens": 800, "cache_audio_read_tokens": 600, "output_image_tokens": 150},
    ),
    "semconv video": (
        {
            **GEMINI_AUDIO,
            "gen_ai.usage.video.input_tokens": 300,
            "gen_ai.usage.video.cache_read.input_tokens": 100,
            "gen_ai.usage.image.input_tokens": 50,
            "gen_ai.usage.image.cache_read.input_tokens": 50,
            "gen_ai.usage.audio.output_tokens": 20,
            "gen_ai.usage.video.output_tokens": 10,
        },
        {
            "input_video_tokens": 300,
            "cache_video_read_tokens": 100,
            "input_image_tokens": 50,
            "cache_image_read_tokens": 50,
            "output_audio_tokens": 20,
            "output_video_tokens": 10,
        },
    ),
    "pydantic-ai audio details": (
        {
            **GEMINI_AUDIO,
            "gen_ai.usage.details.input_audio_tokens": 800,
            "gen_ai.usage.details.cache_audio_read_tokens": 600,
            "gen_ai.usage.details.output_audio_tokens": 100,
        },
        {"input_audio_tokens": 800, "cache_audio_read_tokens": 600, "output_audio_tokens": 100},
    ),
    "openinference audio": (
        {
            "openinference.span.kind": "LLM",
            "llm.provider": "google",
            "llm.model_name": "gemini-2.5-flash",
            "llm.token_count.prompt": 1_000,
            "llm.token_count.prompt_details.audio": 700,
            "llm.token_count.completion": 300,
            "llm.token_count.completion_details.audio": 250,
        },
        {"input_audio_tokens": 700, "output_audio_tokens": 250},
    ),
    "anthropic SDK one-hour cache writes": (
        {**CLAUDE_1H, "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 3_000},
        {"cache_write_1h_tokens": 3_000},
    ),
    "pydantic-ai Anthropic details": (
        {
            **CLAUDE_1H,
            "gen_ai.usage.details.ephemeral_1h_input_tokens": 4_000,
            "gen_ai.usage.details.web_search_requests": 2,
        },
        {"cache_write_1h_tokens": 4_000, "web_search_requests": 2},
    ),
    "pydantic-ai Gemini grounding queries (not what Gemini bills)": (
        {**GEMINI_AUDIO, "gen_ai.usage.details.web_search_requests": 3},
        {},
    ),
}


def genai_prices_cost(record: UsageRecord) -> int:
    """What genai-prices says the call costs, details included, in nano-USD as the ledger
    rounds it."""
    assert record.provider is not None and record.model is not None
    fields = msgspec.structs.asdict(record)
    counts = record.token_counts()
    usage = genai_prices.Usage(
        input_tokens=counts.input,
        cache_read_tokens=counts.cache_read,
        cache_write_tokens=counts.cache_write,
        output_tokens=counts.output,
        output_reasoning_tokens=counts.reasoning,
        web_searches=fields.get("web_search_requests") or 0,
        **{name: fields.get(name) or 0 for name in DETAIL_FIELDS.values()
           if name != "web_search_requests"},
    )  # fmt: skip
    price = genai_prices.calc_price(
        usage, record.model, provider_id=record.provider, genai_request_timestamp=record.time
    )
    return round_usd_to_nanousd(price.total_price)


@pytest.mark.parametrize("name", sorted(DETAILED_SPANS))
def test_usage_details_on_spans_make_version_2_records_priced_as_genai_prices_does(
    store: Store, name: str
) -> None:
    attributes, expected = DETAILED_SPANS[name]
    recorder = Recorder()
    recorder.step("llm call", attributes, None, 1_000)
    conversion = recorder.convert()
    [record] = conversion.records
    details = {field: record[field] for field in V2_FIELDS if field in record}
    assert details == expected
    assert record.get("version") == (2 if expected else None)
    [decoded] = usage(conversion)
    ingest(store, conversion.records)
    [summary] = store.tasks()
    assert summary.cost_nanousd == genai_prices_cost(decoded) > 0


def test_details_that_do_not_fit_their_totals_are_refused_with_the_reason() -> None:
    recorder = Recorder()
    bad = {**CLAUDE_1H, "anthropic.usage.cache_creation.ephemeral_1h_input_tokens": 4_001}
    span = recorder.step("chat", bad, None, 1_000)
    conversion = recorder.convert()
    assert conversion.records == []
    assert reasons_by_span(conversion) == {
        hex_id(span): "reports usage details that do not fit: field `cache_write_1h_tokens`: "
        "cache_write_1h_tokens (4001) exceed cache_write_tokens (4000)"
    }


def test_ai_sdk_embeddings_are_billed_once_per_inner_call() -> None:
    """`embedMany` splits its values into several `doEmbed` calls: each is billed, the outer
    span's `ai.usage.tokens` (their sum) is not."""
    recorder = Recorder()
    outer = {
        "ai.operationId": "ai.embedMany",
        "ai.model.provider": "openai.embedding",
        "ai.model.id": "text-embedding-3-small",
        "ai.usage.tokens": 150,
    }
    root = recorder.start("ai.embedMany", outer)
    inner = {**outer, "ai.operationId": "ai.embedMany.doEmbed"}
    recorder.step("ai.embedMany.doEmbed", {**inner, "ai.usage.tokens": 100}, root, 1_000)
    recorder.step("ai.embedMany.doEmbed", {**inner, "ai.usage.tokens": 50}, root, 1_100)
    end(root, 1_500)
    conversion = recorder.convert()
    calls = usage(conversion)
    assert [(c.provider, c.model, c.token_counts()) for c in calls] == [
        ("openai", "text-embedding-3-small", TokenCounts(100)),
        ("openai", "text-embedding-3-small", TokenCounts(50)),
    ]
    [task] = tasks(conversion)
    assert task.status == "completed"
