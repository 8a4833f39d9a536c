"""The same agent runs, exported three ways to a real `payoff serve`, give the same ledger.

Spans are made by hand with the OpenTelemetry SDK (random trace and span ids, several runs
interleaved, GenAI attributes as instrumentations set them), then sent through the real
OTLP/HTTP exporter: all in one export, through a BatchSpanProcessor in batches of three, and
through a SimpleSpanProcessor one span per export. `payoff tasks --json` must be identical.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExportResult,
    SpanProcessor,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode

from api_support import Keys, live_server, prepare_ledger
from payoff.store import open_store

pytestmark = pytest.mark.slow

START_NS = 1_796_000_000 * 10**9  # 2026-11-29, inside the catalog's dates
MS = 1_000_000
RUNS = 8


class Runs:
    """Agent runs made step by step, interleaved: each call advances one run by one step."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)
        self.memory = InMemorySpanExporter()
        provider = TracerProvider(resource=Resource.create({"service.name": "support-agent"}))
        provider.add_span_processor(SimpleSpanProcessor(self.memory))
        self.tracer = provider.get_tracer("agent.tests")
        self.clock_ns = START_NS

    def tick(self) -> int:
        self.clock_ns += self.random.randint(5, 400) * MS
        return self.clock_ns

    def start(self, name: str, attributes: dict[str, Any], parent: Span | None) -> Span:
        context = None if parent is None else trace.set_span_in_context(parent)
        span = self.tracer.start_span(name, context, attributes=attributes, start_time=self.tick())
        assert isinstance(span, Span)
        return span

    def step(self, name: str, attributes: dict[str, Any], parent: Span) -> None:
        self.start(name, attributes, parent).end(end_time=self.tick())

    def chat(self, parent: Span, *, usage: bool = True, **extra: Any) -> None:
        counts = {
            "gen_ai.usage.input_tokens": self.random.randint(800, 4_000),
            "gen_ai.usage.output_tokens": self.random.randint(50, 600),
        }
        counts["gen_ai.usage.cache_read.input_tokens"] = counts["gen_ai.usage.input_tokens"] // 2
        counts["gen_ai.usage.reasoning.output_tokens"] = counts["gen_ai.usage.output_tokens"] // 3
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            **(counts if usage else {}),
            **extra,
        }
        self.step("chat gpt-4o", attributes, parent)

    def chat_traced_twice(self, parent: Span, nested: bool) -> None:
        """One call traced by its instrumentation and by the SDK itself (as anthropic>=2.14
        does): the SDK's span below the instrumentation's, or beside it."""
        response = f"msg_{self.random.getrandbits(64):016x}"
        counts = {
            "gen_ai.usage.input_tokens": self.random.randint(800, 4_000),
            "gen_ai.usage.output_tokens": self.random.randint(50, 600),
        }
        counts["gen_ai.usage.cache_write.input_tokens"] = counts["gen_ai.usage.input_tokens"] // 2
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-6",
            "gen_ai.response.id": response,
            **counts,
        }
        instrumentation = self.start("chat claude-sonnet-4-6", attributes, parent)
        sdk = {**attributes, "gen_ai.usage.cache_read.input_tokens": 0}
        self.step("anthropic.messages.create", sdk, instrumentation if nested else parent)
        instrumentation.end(end_time=self.tick())

    def tool(self, parent: Span, name: str) -> None:
        tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        self.step(f"execute_tool {name}", {**tool, "payoff.cost": "0.004"}, parent)

    def run(self, number: int) -> Any:
        """One run as a generator: each `next` makes one more of its spans."""
        customer = ("acme", "globex")[number % 2]
        request = self.start("POST /chat", {"payoff.customer": customer}, None)
        agent = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support",
            "payoff.task_type": "support.ticket",
        }
        if number % 4 == 3:
            agent["gen_ai.conversation.id"] = f"conversation-{number}"
        root = self.start("invoke_agent support", agent, request)
        yield
        if number % 3 == 1:
            self.chat_traced_twice(root, nested=number % 2 == 0)
        else:
            self.chat(root)
        yield
        self.tool(root, "search_kb")
        yield
        self.chat(root, usage=number % 3 != 0)  # some streams report no usage
        yield
        sub = self.start("invoke_agent triage", {"gen_ai.operation.name": "invoke_agent"}, root)
        self.chat(sub)
        sub.end(end_time=self.tick())
        yield
        if number % 5 == 4:
            root.set_status(Status(StatusCode.ERROR, "gave up"))
        else:
            self.chat(root)  # the answer
        root.end(end_time=self.tick())
        yield
        request.end(end_time=self.tick())

    def make(self, count: int) -> list[ReadableSpan]:
        """`count` runs, interleaved at random; their spans in the order they ended."""
        runs = [self.run(number) for number in range(count)]
        while runs:
            chosen = self.random.choice(runs)
            try:
                next(chosen)
            except StopIteration:
                runs.remove(chosen)
        return list(self.memory.get_finished_spans())


def exporter(url: str, keys: Keys) -> OTLPSpanExporter:
    return OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=keys.header(keys.ingest))


def one_export(url: str, keys: Keys, spans: Sequence[ReadableSpan]) -> None:
    assert exporter(url, keys).export(spans) == SpanExportResult.SUCCESS


def through(processor: SpanProcessor, spans: Sequence[ReadableSpan]) -> None:
    for span in spans:  # as the SDK calls it, each span as it ends
        processor.on_end(span)
    assert processor.force_flush(30_000)
    processor.shutdown()


def batched(url: str, keys: Keys, spans: Sequence[ReadableSpan]) -> None:
    through(BatchSpanProcessor(exporter(url, keys), max_export_batch_size=3), spans)


def one_by_one(url: str, keys: Keys, spans: Sequence[ReadableSpan]) -> None:
    through(SimpleSpanProcessor(exporter(url, keys)), spans)


def tasks_json(db: Path) -> list[dict[str, Any]]:
    shown = subprocess.run(
        [sys.executable, "-m", "payoff.cli", "--db", str(db), "tasks", "--json"],
        capture_output=True,
        check=True,
    )
    return list(json.loads(shown.stdout))


def steps(db: Path, tasks: list[dict[str, Any]]) -> dict[str, list[tuple[Any, ...]]]:
    store = open_store(db, create=False)
    try:
        return {
            task["id"]: [
                (step["id"], step["kind"], step["visible"], step["cost_nanousd"])
                for step in store.task_steps(task["id"], limit=100)
            ]
            for task in tasks
        }
    finally:
        store.close()


def test_one_export_batches_and_one_span_per_export_give_the_same_tasks(tmp_path: Path) -> None:
    spans = Runs(seed=13).make(count=RUNS)
    ledgers = {}
    for name, send in (("one", one_export), ("batched", batched), ("single", one_by_one)):
        db = tmp_path / f"{name}.db"
        keys = prepare_ledger(db)
        with live_server(db, tmp_path / f"{name}.log") as server:
            send(server.url, keys, spans)
            send(server.url, keys, spans[:5])  # a re-send changes nothing
            metrics = httpx.get(f"{server.url}/metrics").text
        # The calls traced twice (runs 1, 4, 7), each counted once, whatever the batching.
        assert 'payoff_otlp_spans_total{outcome="traced_twice"} 3' in metrics, name
        shown = tasks_json(db)
        ledgers[name] = (shown, steps(db, shown))
    assert ledgers["batched"] == ledgers["one"]
    assert ledgers["single"] == ledgers["one"]

    shown, by_task = ledgers["one"]
    assert len(shown) == RUNS
    assert {t["status"] for t in shown} == {"completed", "failed", "open"}
    conversations = [t for t in shown if t["id"].startswith("conversation-")]
    assert [t["status"] for t in conversations] == ["open", "open"]  # until they go quiet
    for task in shown:
        assert task["type"] == "support.ticket"
        assert task["customer"] in ("acme", "globex")  # from the request span above the run
        # The last model call of the run is the answer, and nothing else: when that call
        # reported no usage, it is visible and unpriced, and no other call is taken instead.
        [visible] = [step for step in by_task[task["id"]] if step[2]]
        assert visible[0] == by_task[task["id"]][-1][0] or visible[1] == "custom"
        # Two calls, a tool, a sub-agent's call, the answer unless the run failed; a call
        # traced twice (runs 1, 4, 7) is one step.
        assert len(by_task[task["id"]]) == (4 if task["status"] == "failed" else 5)


def wait_for(condition: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.2)


def test_a_quiet_conversation_closes_and_refusals_are_counted_and_told(tmp_path: Path) -> None:
    runs = Runs(seed=5)
    agent = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "support",
        "gen_ai.conversation.id": "chat-1",  # as pydantic-ai sets on every run
        "payoff.customer": "acme",
    }
    root = runs.start("invoke_agent support", agent, None)
    runs.chat(root)
    runs.chat(root)
    root.set_status(Status(StatusCode.ERROR, "the model refused"))
    root.end(end_time=runs.tick())
    lost = runs.start("invoke_agent other", {"gen_ai.operation.name": "invoke_agent"}, None)
    runs.chat(lost)  # no customer anywhere: refused, and no empty task closed
    lost.end(end_time=runs.tick())
    spans = runs.memory.get_finished_spans()
    db = tmp_path / "l.db"
    keys = prepare_ledger(db)
    with live_server(db, tmp_path / "serve.log", "--idle-timeout", "1") as server:
        reply = httpx.post(
            f"{server.url}/v1/traces",
            content=encode_spans(spans).SerializeToString(),
            headers={**keys.header(keys.ingest), "content-type": "application/x-protobuf"},
        )
        answer = ExportTraceServiceResponse.FromString(reply.content)
        assert answer.partial_success.rejected_spans == 1
        assert "1 spans refused (no_customer 1); span " in answer.partial_success.error_message

        def task() -> dict[str, Any]:
            headers = keys.header(keys.admin)
            found = httpx.get(f"{server.url}/v1/tasks/chat-1", headers=headers)
            return dict(found.json())

        assert task()["status"] == "open"
        wait_for(lambda: task()["status"] != "open")
        metrics = httpx.get(f"{server.url}/metrics").text
    closed = task_row(db, "chat-1")
    assert closed == ("failed", root.end_time // 1000)  # as its last run ended, then
    assert [t["id"] for t in tasks_json(db)] == ["chat-1"]
    assert 'payoff_otlp_spans_refused_total{reason="no_customer"} 1' in metrics
    assert 'payoff_records_total{status="accepted"} 3' in metrics  # two calls, the close
    assert 'payoff_http_request_duration_seconds_count{route="/v1/traces"} 1' in metrics
    assert "span " in (tmp_path / "serve.log").read_text()  # the refusal was logged


def task_row(db: Path, task: str) -> tuple[str, int]:
    with sqlite3.connect(db) as conn:
        row = conn.execute(
            "SELECT status, status_at_us FROM tasks WHERE id = ?", (task,)
        ).fetchone()
    return row[0], row[1]
