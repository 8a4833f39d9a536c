"""LiteLLM with payoff's own callback (`payoff.sdk.litellm.PayoffCallback`), the way
docs/otlp.md recommends for LiteLLM: the same two calls, recorded into the task of the
`meter.task` block they are made in, sent to payoff serve by a remote Meter (PAYOFF_URL and
PAYOFF_API_KEY). The answer is marked visible with LiteLLM's own metadata.
"""

import json
import os
import tempfile
import time

import agent
import litellm

import payoff
from payoff.sdk.litellm import VISIBLE_METADATA_KEY, PayoffCallback

customer = os.environ["AGENT_CUSTOMER"]
with tempfile.TemporaryDirectory() as spool:
    meter = payoff.Meter(os.environ["PAYOFF_URL"], spool=spool)
    litellm.callbacks = [PayoffCallback(meter, customer=customer)]
    with meter.task(customer=customer, type=agent.TASK_TYPE) as task:
        for prompt, visible in ((agent.PLAN_PROMPT, False), (agent.ANSWER_PROMPT, True)):
            litellm.completion(
                model="openai/gpt-5-mini",
                api_base=agent.provider_url("/v1"),
                api_key="sk-fake",
                messages=[{"role": "user", "content": prompt}],
                metadata={VISIBLE_METADATA_KEY: visible},
            )
        # LiteLLM calls its callbacks on threads of its own, after each call returns.
        deadline = time.monotonic() + 20
        while task.steps < 2:
            if time.monotonic() > deadline:
                raise SystemExit("LiteLLM never called the callback of both calls")
            time.sleep(0.05)
    if not meter.close(timeout_s=15):
        raise SystemExit("payoff serve did not acknowledge the records within 15 s")
print(json.dumps({"task_ids": [task.id]}), flush=True)
