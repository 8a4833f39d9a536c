"""A real `payoff serve` on loopback: crash safety under load, and OpenTelemetry exports."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import genai_prices
import httpx
import msgspec
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from api_support import SHORT_SETTLE, Keys, live_server, prepare_ledger, start_server, usage
from payoff.core.money import format_nanousd, round_usd_to_nanousd

# Every test here starts processes or a live server: seconds each.
pytestmark = pytest.mark.slow

BATCH = 1_000
CLIENTS = 3


def batch_of(client: int, number: int) -> list[dict]:
    return [
        usage(f"c{client}-b{number}-{i}", task=f"c{client}-t{number}", model="gpt-4o-mini")
        for i in range(BATCH)
    ]


def stored_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM events")]


def test_a_kill_mid_batch_loses_nothing_acknowledged_and_a_retry_adds_nothing_twice(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys: Keys = prepare_ledger(db)
    server = start_server(db, log)
    acknowledged: list[tuple[int, int]] = []
    failed_in_flight: list[tuple[int, int]] = []
    enough = threading.Event()

    def client(number: int) -> None:
        with httpx.Client(base_url=server.url, headers=keys.header(keys.ingest)) as http:
            for batch in range(200):
                body = msgspec.json.encode(batch_of(number, batch))
                try:
                    response = http.post("/v1/events", content=body, timeout=30)
                except httpx.TransportError:
                    failed_in_flight.append((number, batch))
                    return
                assert response.status_code == 200
                assert response.json()["accepted"] == BATCH
                acknowledged.append((number, batch))
                if len(acknowledged) >= 6:
                    enough.set()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=120), log.read_text()[-2000:]
    server.kill()
    for thread in threads:
        thread.join(timeout=60)
    assert failed_in_flight, "the kill should have cut requests in flight"

    stored = set(stored_ids(db))
    for number, batch in acknowledged:
        assert {r["id"] for r in batch_of(number, batch)} <= stored
    # A batch is one transaction: it is all there or not at all.
    for number, batch in failed_in_flight:
        ids = {r["id"] for r in batch_of(number, batch)}
        assert ids <= stored or not ids & stored

    with (
        live_server(db, log) as restarted,
        httpx.Client(base_url=restarted.url, headers=keys.header(keys.ingest)) as http,
    ):
        for number, batch in acknowledged + failed_in_flight:
            body = msgspec.json.encode(batch_of(number, batch))
            answer = http.post("/v1/events", content=body, timeout=30).json()
            assert answer["rejected"] == answer["conflicts"] == 0
            if (number, batch) in acknowledged:
                assert answer["duplicates"] == BATCH
    ids = stored_ids(db)
    assert len(ids) == len(set(ids)) == BATCH * (len(acknowledged) + len(failed_in_flight))


# -- OpenTelemetry GenAI spans, exported by the real SDK over OTLP/HTTP -------------------

CHAT_CALLS = [  # (input, cache read, output, reasoning) of the agent's two model calls
    (1_500, 1_000, 400, 300),
    (2_200, 0, 250, 0),
]


def expected_cost_nanousd(calls: list[tuple[int, int, int, int]], when: dt.datetime) -> int:
    total = 0
    for input_tokens, cache_read, output, _reasoning in calls:
        price = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=input_tokens, cache_read_tokens=cache_read, output_tokens=output
            ),
            "gpt-4o",
            provider_id="openai",
            genai_request_timestamp=when,
        ).total_price
        total += round_usd_to_nanousd(price)
    return total


def run_agent(tracer: Any) -> str:
    """One agent run: a root invoke_agent span, two chat calls and a tool call."""
    with tracer.start_as_current_span("invoke_agent support") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "support")
        for number, (input_tokens, cache_read, output, reasoning) in enumerate(CHAT_CALLS):
            with tracer.start_as_current_span(f"chat gpt-4o {number}") as span:
                span.set_attribute("gen_ai.operation.name", "chat")
                span.set_attribute("gen_ai.provider.name", "openai")
                span.set_attribute("gen_ai.request.model", "gpt-4o")
                span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
                span.set_attribute("gen_ai.usage.cache_read.input_tokens", cache_read)
                span.set_attribute("gen_ai.usage.output_tokens", output)
                span.set_attribute("gen_ai.usage.reasoning.output_tokens", reasoning)
            if number == 0:
                with tracer.start_as_current_span("execute_tool web_search") as tool:
                    tool.set_attribute("gen_ai.operation.name", "execute_tool")
                    tool.set_attribute("gen_ai.tool.name", "web_search")
                    tool.set_attribute("payoff.cost", "0.004")
                    tool.set_attribute("payoff.customer", "acme")
        return f"{root.get_span_context().trace_id:032x}"


def test_spans_exported_by_the_opentelemetry_sdk_become_tasks_with_exact_costs(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    with live_server(db, log, *SHORT_SETTLE) as server:
        provider = TracerProvider(
            resource=Resource.create({"service.name": "agent", "payoff.customer": "acme"})
        )
        exporter = OTLPSpanExporter(
            endpoint=f"{server.url}/v1/traces",
            headers=keys.header(keys.ingest),
            timeout=10,
            compression=Compression.Gzip,  # as the OpenTelemetry Collector sends by default
        )
        provider.add_span_processor(BatchSpanProcessor(exporter))
        started = dt.datetime.now(dt.UTC)
        trace_id = run_agent(provider.get_tracer("test"))
        assert provider.force_flush(10_000)
        provider.shutdown()
        server.wait_judged()

        task = httpx.get(f"{server.url}/v1/tasks/{trace_id}", headers=keys.header(keys.acme))
        assert task.status_code == 200, task.text
        shown = task.json()
        assert (shown["customer"], shown["type"], shown["status"]) == (
            "acme",
            "support",
            "completed",
        )
        assert [s["kind"] for s in shown["step_list"]] == ["llm", "tool", "llm"]
        total_tokens = sum(i + o for i, _, o, _ in CHAT_CALLS)
        visible = CHAT_CALLS[-1][2] - CHAT_CALLS[-1][3]  # the last call under the root
        assert (shown["tokens_total"], shown["tokens_visible"]) == (total_tokens, visible)
        first = shown["step_list"][0]
        assert (first["input_tokens"], first["cache_read_tokens"]) == (1_500, 1_000)
        assert (first["output_tokens"], first["reasoning_tokens"]) == (400, 300)
        tool_nanousd = 4_000_000
        expected = expected_cost_nanousd(CHAT_CALLS, started) + tool_nanousd
        assert shown["cost_usd"] == format_nanousd(expected)


def otlp_json_export(trace_id: str, customer: str) -> dict[str, Any]:
    """An OTLP/JSON body as an exporter writes it: hex ids, string int64s, camelCase."""
    now_ns = time.time_ns()

    def attribute(key: str, value: Any) -> dict[str, Any]:
        kind = "intValue" if isinstance(value, int) else "stringValue"
        return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}

    root, chat = "1" * 16, "2" * 16
    spans = [
        {"traceId": trace_id, "spanId": root, "name": "invoke_agent helper", "kind": 1,
         "startTimeUnixNano": str(now_ns - 2_000_000_000), "endTimeUnixNano": str(now_ns),
         "attributes": [attribute("gen_ai.operation.name", "invoke_agent")],
         "status": {}},
        {"traceId": trace_id, "spanId": chat, "parentSpanId": root, "name": "chat", "kind": 3,
         "startTimeUnixNano": str(now_ns - 1_500_000_000),
         "endTimeUnixNano": str(now_ns - 500_000_000),
         "attributes": [
             attribute("gen_ai.operation.name", "chat"),
             attribute("gen_ai.provider.name", "openai"),
             attribute("gen_ai.request.model", "gpt-4o"),
             attribute("gen_ai.usage.input_tokens", 1_000),
             attribute("gen_ai.usage.output_tokens", 100),
         ],
         "status": {}},
        {"traceId": trace_id, "spanId": "3" * 16, "parentSpanId": root, "name": "GET /kb",
         "kind": 3, "startTimeUnixNano": str(now_ns - 400_000_000),
         "endTimeUnixNano": str(now_ns - 300_000_000),
         "attributes": [attribute("http.request.method", "GET")], "status": {}},
    ]  # fmt: skip
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [attribute("enduser.id", customer)]},
                "scopeSpans": [{"scope": {"name": "hand-written"}, "spans": spans}],
            }
        ]
    }


def test_otlp_json_exports_are_metered_and_a_resend_adds_nothing(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    trace_id = "5b8efff798038103d269b633813fc60c"
    body = otlp_json_export(trace_id, "globex")
    with live_server(db, log, *SHORT_SETTLE) as server:
        headers = keys.header(keys.ingest)
        for _ in range(2):  # the second after the run was judged
            response = httpx.post(f"{server.url}/v1/traces", json=body, headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("application/json")
            warning = response.json()["partialSuccess"]
            assert "rejectedSpans" not in warning  # a warning: nothing was refused
            assert warning["errorMessage"] == "1 spans without GenAI usage ignored"
            server.wait_judged()
        shown = httpx.get(
            f"{server.url}/v1/tasks/{trace_id}", headers=keys.header(keys.globex)
        ).json()
    assert (shown["customer"], shown["steps"], shown["status"]) == ("globex", 1, "completed")
    assert (shown["tokens_total"], shown["tokens_visible"]) == (1_100, 100)
    assert len(stored_ids(db)) == 1


def test_several_server_processes_share_one_ledger(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    answers: list[dict[str, Any]] = []

    def client(number: int, url: str) -> None:
        with httpx.Client(base_url=url, headers=keys.header(keys.ingest)) as http:
            for batch in range(4):
                body = msgspec.json.encode(batch_of(number, batch))
                answers.append(http.post("/v1/events", content=body, timeout=60).json())

    with live_server(db, log, "--workers", "2") as server:
        threads = [threading.Thread(target=client, args=(n, server.url)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [a["accepted"] for a in answers] == [BATCH] * 16
    assert len(set(stored_ids(db))) == len(stored_ids(db)) == 16 * BATCH
    assert "died" not in log.read_text()
