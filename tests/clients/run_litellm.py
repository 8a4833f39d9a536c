"""LiteLLM with its OpenTelemetry callback (`litellm.callbacks = ["otel"]`).

The callback exports through the application's global tracer provider when there is one,
as here. The two calls go through LiteLLM's OpenAI provider to the fake provider.
"""

import agent
import litellm

provider = agent.setup_tracing()
litellm.callbacks = ["otel"]
trace_ids: list[str] = []
with agent.agent_run(trace_ids):
    for prompt in (agent.PLAN_PROMPT, agent.ANSWER_PROMPT):
        litellm.completion(
            model="openai/gpt-5-mini",
            api_base=agent.provider_url("/v1"),
            api_key="sk-fake",
            messages=[{"role": "user", "content": prompt}],
        )
agent.litellm_logged()  # after the run: which call the span carries stays as it is
agent.finish(provider, trace_ids)
