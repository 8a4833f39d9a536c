"""OpenLLMetry's Anthropic instrumentation (traceloop's opentelemetry-instrumentation-anthropic)."""

import agent
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

provider = agent.setup_tracing()
AnthropicInstrumentor().instrument()
trace_ids: list[str] = []
agent.anthropic_run(trace_ids)
agent.finish(provider, trace_ids)
