"""LiteLLM with its OpenTelemetry callback and no application span around the calls.

Each `litellm.completion` is then a `litellm_request` span at the root of a trace of its
own (with a `raw_gen_ai_request` child), so no call clobbers an application span, and no
run groups the two calls. LiteLLM makes the traces: the agent cannot name them.
"""

import agent
import litellm

provider = agent.setup_tracing()
litellm.callbacks = ["otel"]
for prompt in (agent.PLAN_PROMPT, agent.ANSWER_PROMPT):
    litellm.completion(
        model="openai/gpt-5-mini",
        api_base=agent.provider_url("/v1"),
        api_key="sk-fake",
        messages=[{"role": "user", "content": prompt}],
    )
agent.finish(provider, [])
