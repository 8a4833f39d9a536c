"""OpenLLMetry's OpenAI instrumentation as released before the semconv names (0.47.5).

It sends gen_ai.usage.prompt_tokens, completion_tokens and cache_read_input_tokens, and
imports opentelemetry._events, which opentelemetry-api 1.45 removed: it runs in a venv of its
own, tests/clients/.legacy-openllmetry (requirements/clients-legacy-openllmetry.txt).
"""

import agent
from opentelemetry.instrumentation.openai import OpenAIInstrumentor

provider = agent.setup_tracing()
OpenAIInstrumentor().instrument()
trace_ids: list[str] = []
agent.openai_chat_run(trace_ids)
agent.finish(provider, trace_ids)
