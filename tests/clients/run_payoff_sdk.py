"""payoff's own SDK: the same two calls through the official openai SDK, recorded by
`task.record`, sent to payoff serve by a remote Meter (PAYOFF_URL and PAYOFF_API_KEY).

The customer and the task type are arguments of `meter.task`; the answer is marked visible.
"""

import json
import os
import tempfile

import agent
import openai

import payoff

client = openai.OpenAI(base_url=agent.provider_url("/v1"), api_key="sk-fake", max_retries=0)
with tempfile.TemporaryDirectory() as spool:
    meter = payoff.Meter(os.environ["PAYOFF_URL"], spool=spool)
    with meter.task(customer=os.environ["AGENT_CUSTOMER"], type=agent.TASK_TYPE) as task:
        task.record(
            client.chat.completions.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": agent.PLAN_PROMPT}]
            )
        )
        task.record(client.chat.completions.create(
            model="gpt-5-mini", messages=[{"role": "user", "content": agent.ANSWER_PROMPT}]),
            visible=True)  # fmt: skip
    if not meter.close(timeout_s=15):
        raise SystemExit("payoff serve did not acknowledge the records within 15 s")
print(json.dumps({"task_ids": [task.id]}), flush=True)
