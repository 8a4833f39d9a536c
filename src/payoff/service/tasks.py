"""Reading tasks: lists, one task with its steps, usage and cost by task type, the ledger's
counts; and their one JSON shape.

`payoff tasks --json` and `GET /v1/tasks` print the same `task_json`: costs as exact decimal
USD strings (`_usd` last), null when no step of the task could be priced (unknown, not zero).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from payoff.core.errors import TaskNotFound
from payoff.core.money import format_nanousd
from payoff.store.protocol import (
    LedgerCounts,
    RecordStore,
    TaskReads,
    TaskSummary,
    TaskTypeSummary,
)

MAX_STEPS_SHOWN = 1_000
"""Steps listed with one task; beyond it the list is cut and says so."""
RATIO_PLACES = Decimal("0.01")


def list_tasks(
    store: TaskReads, customer: str | None = None, *, limit: int = 1000, offset: int = 0
) -> list[TaskSummary]:
    """Tasks, optionally of one customer, in the store's order, one page of them."""
    return store.tasks(customer, limit=limit, offset=offset)


def task_with_steps(store: TaskReads, task_id: str, customer: str | None) -> dict[str, Any]:
    """One task (of `customer` when given) as JSON, with up to MAX_STEPS_SHOWN of its steps."""
    found = store.tasks(customer, limit=1, task_id=task_id)
    if not found:
        raise TaskNotFound(f"no task {task_id!r}")
    steps = store.task_steps(task_id, limit=MAX_STEPS_SHOWN + 1)
    return {
        **task_json(found[0]),
        "step_list": [step_json(step) for step in steps[:MAX_STEPS_SHOWN]],
        "step_list_truncated": len(steps) > MAX_STEPS_SHOWN,
    }


def usage_by_type(store: TaskReads, customer: str | None) -> list[dict[str, Any]]:
    """Tasks, steps, visible and hidden tokens and cost per task type, as JSON."""
    return [task_type_json(row) for row in store.task_types(customer)]


def cost_by_type(store: TaskReads, customer: str | None = None) -> list[dict[str, Any]]:
    """`usage_by_type` with what one task and one outcome of each type cost on average (whole
    nano-USD, rounded down, as USD strings; null without tasks or outcomes)."""
    return [
        {
            **task_type_json(row),
            "cost_per_task_usd": _average_usd(row.cost_nanousd, row.tasks),
            "cost_per_outcome_usd": _average_usd(row.cost_nanousd, row.outcomes),
        }
        for row in store.task_types(customer)
    ]


def _average_usd(amount_nanousd: int, count: int) -> str | None:
    return format_nanousd(amount_nanousd // count) if count else None


def ledger_counts(store: RecordStore) -> LedgerCounts:
    """How many customers, steps (and of them unpriced), tasks, outcomes and attestations
    the ledger holds."""
    return store.counts()


def hidden_ratio(tokens_hidden: int, tokens_visible: int) -> str | None:
    """Hidden tokens per visible token, two places; None without visible tokens."""
    if tokens_visible == 0:
        return None
    ratio = Decimal(tokens_hidden) / Decimal(tokens_visible)
    return str(ratio.quantize(RATIO_PLACES, ROUND_HALF_EVEN))


def _cost_usd(amount_nanousd: int, task: TaskSummary) -> str | None:
    """A task's cost, or None when no step of it could be priced (unknown, not zero)."""
    if task.unpriced_steps and task.unpriced_steps == task.steps:
        return None
    return format_nanousd(amount_nanousd)


def task_json(task: TaskSummary) -> dict[str, Any]:
    """One task, the same for the CLI and the HTTP API."""
    return {
        "id": task.id,
        "customer": task.customer,
        "type": task.type,
        "status": task.status,
        "steps": task.steps,
        "tokens_total": task.tokens_total,
        "tokens_visible": task.tokens_visible,
        "tokens_hidden": task.tokens_hidden,
        "hidden_ratio": hidden_ratio(task.tokens_hidden, task.tokens_visible),
        "cost_usd": _cost_usd(task.cost_nanousd, task),
        "cost_visible_usd": _cost_usd(task.cost_visible_nanousd, task),
        "cost_hidden_usd": _cost_usd(task.cost_hidden_nanousd, task),
        "unpriced_steps": task.unpriced_steps,
    }


def step_json(step: dict[str, Any]) -> dict[str, Any]:
    """One step as the store reads it, its nano-USD costs as decimal USD strings and its
    record format v2 details as an object (null when it has none)."""
    shown = dict(step)
    for name in ("cost_nanousd", "cost_visible_nanousd", "cost_given_nanousd"):
        value = shown.pop(name)
        shown[name.replace("_nanousd", "_usd")] = None if value is None else format_nanousd(value)
    details = shown.get("usage_details")
    shown["usage_details"] = None if details is None else json.loads(details)
    return shown


def task_type_json(row: TaskTypeSummary) -> dict[str, Any]:
    """Usage of one task type; its cost as exact USD, like a task's."""
    shown = asdict(row)
    del shown["cost_nanousd"]
    return {
        **shown,
        "tokens_hidden": row.tokens_hidden,
        "cost_usd": format_nanousd(row.cost_nanousd),
    }
