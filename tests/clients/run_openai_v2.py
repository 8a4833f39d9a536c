"""The official OpenTelemetry OpenAI instrumentation (opentelemetry-instrumentation-openai-v2).

Its last release needs an older opentelemetry-util-genai than the genai-openai successor:
it runs from tests/clients/.legacy (requirements/clients-legacy.txt).
"""

import agent
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

provider = agent.setup_tracing()
OpenAIInstrumentor().instrument()
trace_ids: list[str] = []
agent.openai_chat_run(trace_ids)
agent.finish(provider, trace_ids)
