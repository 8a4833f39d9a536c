"""A fake agent instrumented with OpenTelemetry, metered by a `payoff serve` with no code
change: its GenAI spans go over OTLP/HTTP to the server's `/v1/traces`.

    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:8000/v1/traces \\
    OTEL_EXPORTER_OTLP_TRACES_HEADERS="Authorization=Bearer%20$INGEST_KEY" \\
    python examples/otel_agent.py [RUNS]

It needs `opentelemetry-sdk` and `opentelemetry-exporter-otlp-proto-http`, and talks to
nothing but the endpoint above. Each run is one support ticket: a root `invoke_agent` span
(the task: its trace id is the task id), a planning call with hidden reasoning, a tool call
with a price, and the answer (the last model call, so payoff infers it visible). The model
calls are fake: they make up the token counts a real instrumentation reads off a response.
It prints the task ids, one a line.
"""

from __future__ import annotations

import random
import sys

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Tracer

CUSTOMER = "acme"
FLUSH_TIMEOUT_MS = 10_000


def chat(tracer: Tracer, model: str, input_tokens: int, output_tokens: int, reasoning: int) -> None:
    """One model call, as OpenTelemetry's GenAI conventions describe it."""
    with tracer.start_as_current_span(f"chat {model}") as span:
        span.set_attribute("gen_ai.operation.name", "chat")
        span.set_attribute("gen_ai.provider.name", "openai")
        span.set_attribute("gen_ai.request.model", model)
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        span.set_attribute("gen_ai.usage.reasoning.output_tokens", reasoning)


def tool(tracer: Tracer, name: str, cost_usd: str) -> None:
    with tracer.start_as_current_span(f"execute_tool {name}") as span:
        span.set_attribute("gen_ai.operation.name", "execute_tool")
        span.set_attribute("gen_ai.tool.name", name)
        span.set_attribute("payoff.cost", cost_usd)  # a decimal string of USD


def run_agent(tracer: Tracer, rng: random.Random) -> str:
    """One support ticket; returns its task id (the trace id in hex)."""
    with tracer.start_as_current_span("invoke_agent support") as root:
        root.set_attribute("gen_ai.operation.name", "invoke_agent")
        root.set_attribute("gen_ai.agent.name", "support.ticket")
        reasoning = rng.randint(800, 2_000)
        chat(tracer, "o4-mini", rng.randint(1_500, 2_500), reasoning + 120, reasoning)
        tool(tracer, "kb_search", "0.0004")
        chat(tracer, "gpt-4o", rng.randint(2_500, 3_500), rng.randint(200, 400), 0)
        return f"{root.get_span_context().trace_id:032x}"


def main(runs: int) -> None:
    # The endpoint and the key come from the standard OTEL_EXPORTER_OTLP_* variables.
    provider = TracerProvider(
        resource=Resource.create({"service.name": "support-agent", "payoff.customer": CUSTOMER})
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("examples.otel_agent")
    rng = random.Random()
    task_ids = [run_agent(tracer, rng) for _ in range(runs)]
    if not provider.force_flush(FLUSH_TIMEOUT_MS):
        sys.exit("the spans could not be exported in time")
    provider.shutdown()
    print("\n".join(task_ids))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
