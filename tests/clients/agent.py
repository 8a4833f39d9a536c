"""What every Python client agent of tests/test_clients.py shares: telemetry set-up and a run.

Each `run_*.py` beside this file is a small agent that uses one real client package the way
its documentation says, against the fake provider (tests/fake_provider.py), and exports its
spans over OTLP/HTTP as a real application would. Everything comes from the environment,
with the standard OpenTelemetry variables:

    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT   http://127.0.0.1:PORT/v1/traces (payoff serve)
    OTEL_EXPORTER_OTLP_TRACES_HEADERS    Authorization=Bearer%20<ingest key>
    OTEL_RESOURCE_ATTRIBUTES             service.name=...,payoff.customer=... (when tested so)
    FAKE_PROVIDER_URL                    http://127.0.0.1:PORT (tests/fake_provider.py)
    AGENT_CUSTOMER_ON                    "resource" (default) or "agent-span": where the
                                         customer is set (the test sets the variables)
    AGENT_CUSTOMER                       the customer, for "agent-span"

An agent prints one JSON line on stdout: {"trace_ids": [...]} of the runs it made.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

AGENT_NAME = "support"
TASK_TYPE = "support.ticket"
PLAN_PROMPT = "Where is my order A-1234? Make a plan."
ANSWER_PROMPT = "Now answer the customer."
TOOL_NAME = "lookup_order"


def provider_url(path: str = "") -> str:
    return os.environ["FAKE_PROVIDER_URL"].rstrip("/") + path


def setup_tracing() -> TracerProvider:
    """The global tracer provider, batching spans to the OTLP/HTTP endpoint of the environment.

    A BatchSpanProcessor, as applications use: the run's spans leave in one export at the
    flush in `finish`.
    """
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(timeout=10)))
    trace.set_tracer_provider(provider)
    return provider


@contextmanager
def agent_run(trace_ids: list[str]) -> Iterator[trace.Span]:
    """The application's own agent span, around the model calls an instrumentation makes.

    It is named and described as the GenAI semantic conventions say an agent run is; it
    carries the customer when AGENT_CUSTOMER_ON says "agent-span".
    """
    tracer = trace.get_tracer("payoff.tests.agent")
    with tracer.start_as_current_span(f"invoke_agent {AGENT_NAME}") as span:
        span.set_attribute("gen_ai.operation.name", "invoke_agent")
        span.set_attribute("gen_ai.agent.name", AGENT_NAME)
        span.set_attribute("payoff.task_type", TASK_TYPE)
        if os.environ.get("AGENT_CUSTOMER_ON") == "agent-span":
            span.set_attribute("payoff.customer", os.environ["AGENT_CUSTOMER"])
        trace_ids.append(f"{span.get_span_context().trace_id:032x}")
        yield span


def litellm_logged() -> None:
    """Wait for LiteLLM's success callbacks, which run on its logging thread pool: a process
    that exits first loses the spans they would have made (a race in LiteLLM, not in what
    reaches the server)."""
    from litellm.litellm_core_utils.thread_pool_executor import executor

    executor.shutdown(wait=True)


def finish(provider: TracerProvider, trace_ids: list[str]) -> None:
    """Flush every span to the endpoint, then say which traces were made."""
    if not provider.force_flush(15_000):
        raise SystemExit("the spans were not exported within 15 s")
    provider.shutdown()
    print(json.dumps({"trace_ids": trace_ids}), flush=True)


# -- the same two calls through each provider SDK ---------------------------------------------
# Imported inside each function: an agent script loads only the SDK it uses.


def openai_chat_run(trace_ids: list[str], stream_answer: bool = False) -> None:
    """One agent run of two Chat Completions calls with the official openai SDK.

    With `stream_answer`, the answer is streamed as most chat front ends do, without
    `stream_options={"include_usage": True}`: OpenAI then sends no usage at all.
    """
    import openai

    client = openai.OpenAI(base_url=provider_url("/v1"), api_key="sk-fake", max_retries=0)
    with agent_run(trace_ids):
        client.chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": PLAN_PROMPT}]
        )
        answer = [{"role": "user", "content": ANSWER_PROMPT}]
        if stream_answer:
            for _chunk in client.chat.completions.create(
                model="gpt-5-mini", messages=answer, stream=True
            ):
                pass
        else:
            client.chat.completions.create(model="gpt-5-mini", messages=answer)


def anthropic_run(trace_ids: list[str]) -> None:
    """One agent run of two Messages calls with the official anthropic SDK."""
    import anthropic

    client = anthropic.Anthropic(base_url=provider_url(), api_key="sk-ant-fake", max_retries=0)
    with agent_run(trace_ids):
        for prompt in (PLAN_PROMPT, ANSWER_PROMPT):
            client.messages.create(
                model="claude-sonnet-4-6",
                max_tokens=1024,
                messages=[{"role": "user", "content": prompt}],
            )


def gemini_run(trace_ids: list[str]) -> None:
    """One agent run of two generateContent calls with the official google-genai SDK."""
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="fake-gemini-key",
        http_options=types.HttpOptions(base_url=provider_url(), api_version="v1beta"),
    )
    with agent_run(trace_ids):
        for prompt in (PLAN_PROMPT, ANSWER_PROMPT):
            client.models.generate_content(model="gemini-2.5-flash", contents=prompt)
