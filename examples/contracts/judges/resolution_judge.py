"""An example judge for support.automated_resolution: the claim and its opened evidence
arrive as JSON on stdin; the verdict leaves as JSON on stdout (docs/contracts.md).

A real judge asks a model whether the conversation was resolved; this one reads the
evidence's own answer, so that the example runs anywhere: a conversation that was escalated
to a person, or whose last customer message asks for more help, was not resolved by the
agent.
"""

from __future__ import annotations

import json
import sys

ASKING_FOR_MORE = ("still", "not working", "doesn't work", "agent", "human", "?")

request = json.load(sys.stdin)
evidence = request["evidence"] or {}
last = str(evidence.get("last_customer_message", "")).lower()
if evidence.get("escalated") is True:
    verdict, reason = "reject", "escalated to a person"
elif any(words in last for words in ASKING_FOR_MORE):
    verdict, reason = "reject", f"the customer asked for more: {last[:80]!r}"
else:
    verdict, reason = "accept", f"the customer ended with {last[:80]!r}"
json.dump({"verdict": verdict, "reason": reason}, sys.stdout)
