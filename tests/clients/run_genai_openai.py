"""The newer official OpenAI instrumentation (opentelemetry-instrumentation-genai-openai)."""

import agent
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

provider = agent.setup_tracing()
OpenAIInstrumentor().instrument()
trace_ids: list[str] = []
agent.openai_chat_run(trace_ids)
agent.finish(provider, trace_ids)
