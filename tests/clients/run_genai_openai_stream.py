"""genai-openai (opentelemetry-instrumentation-genai-openai) with the answer streamed, and
no usage asked for: the span of that call has a model and no token counts."""

import agent
from opentelemetry.instrumentation.genai.openai import OpenAIInstrumentor

provider = agent.setup_tracing()
OpenAIInstrumentor().instrument()
trace_ids: list[str] = []
agent.openai_chat_run(trace_ids, stream_answer=True)
agent.finish(provider, trace_ids)
