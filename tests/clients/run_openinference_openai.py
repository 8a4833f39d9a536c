"""OpenInference's OpenAI instrumentation (openinference-instrumentation-openai).

The customer is said the OpenInference way, `using_user`, which puts `user.id` on every span
made inside it; AGENT_CUSTOMER_ON=user-id selects it.
"""

import os
from contextlib import nullcontext

import agent
from openinference.instrumentation import using_user
from openinference.instrumentation.openai import OpenAIInstrumentor

provider = agent.setup_tracing()
OpenAIInstrumentor().instrument()
trace_ids: list[str] = []
user = (
    os.environ.get("AGENT_CUSTOMER") if os.environ.get("AGENT_CUSTOMER_ON") == "user-id" else None
)
with using_user(user) if user else nullcontext():
    agent.openai_chat_run(trace_ids)
agent.finish(provider, trace_ids)
