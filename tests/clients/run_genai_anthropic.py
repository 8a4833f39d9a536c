"""The newer official Anthropic instrumentation (opentelemetry-instrumentation-genai-anthropic)."""

import agent
from opentelemetry.instrumentation.genai.anthropic import AnthropicInstrumentor

provider = agent.setup_tracing()
AnthropicInstrumentor().instrument()
trace_ids: list[str] = []
agent.anthropic_run(trace_ids)
agent.finish(provider, trace_ids)
