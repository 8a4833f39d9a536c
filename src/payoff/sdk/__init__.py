"""The Python SDK: meter an agent's model and tool calls into tasks, with budgets.

    meter = payoff.Meter()
    with meter.task(customer="acme", type="support.ticket") as task:
        task.record(response)

Modules: meter (the entry point), task, budget, streams (streamed responses), ids
(time-ordered record ids), embedded and remote (sinks; spool and deadletter serve the
remote one), litellm (a LiteLLM callback). See docs/sdk.md.
"""

from __future__ import annotations

from payoff.sdk.budget import Budget, Remaining
from payoff.sdk.meter import Meter
from payoff.sdk.task import Task, current_task

__all__ = ["Budget", "Meter", "Remaining", "Task", "current_task"]
