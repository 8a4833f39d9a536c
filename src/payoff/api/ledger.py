"""Reading the ledger: tasks and their steps, usage by task type, outcomes and verdicts."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from payoff.api.auth import Admin, Ledger, Reader, readable_customer
from payoff.api.config import DEFAULT_PAGE, MAX_PAGE
from payoff.api.models import ERRORS, Page
from payoff.api.pages import filtered_page, page
from payoff.core.money import format_nanousd
from payoff.service import economics, integrity, outcomes
from payoff.store.protocol import TaskSummary

router = APIRouter(prefix="/v1", responses=ERRORS)
Cursor = Annotated[str | None, Query(description="From the previous page's next_cursor.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]
MAX_STEPS_SHOWN = 1_000


def task_json(task: TaskSummary) -> dict[str, Any]:
    return {
        "id": task.id, "customer": task.customer, "type": task.type, "status": task.status,
        "steps": task.steps, "tokens_total": task.tokens_total,
        "tokens_visible": task.tokens_visible, "tokens_hidden": task.tokens_hidden,
        "cost_usd": format_nanousd(task.cost_nanousd),
        "cost_visible_usd": format_nanousd(task.cost_visible_nanousd),
        "cost_hidden_usd": format_nanousd(task.cost_hidden_nanousd),
        "unpriced_steps": task.unpriced_steps,
    }  # fmt: skip


def step_json(step: dict[str, Any]) -> dict[str, Any]:
    shown = dict(step)
    for name in ("cost_nanousd", "cost_visible_nanousd", "cost_given_nanousd"):
        value = shown.pop(name)
        shown[name.replace("_nanousd", "_usd")] = None if value is None else format_nanousd(value)
    return shown


@router.get("/tasks", response_model=Page, summary="Tasks with their tokens and cost")
def list_tasks(
    store: Ledger,
    caller: Reader,
    customer: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    only = readable_customer(caller, customer)
    return page(
        lambda offset, count: store.tasks(only, limit=count, offset=offset),
        cursor,
        limit,
        task_json,
    )


@router.get("/tasks/{task_id}", summary="One task and its steps")
def show_task(store: Ledger, task_id: str, caller: Reader) -> dict[str, Any]:
    found = store.tasks(readable_customer(caller, None), limit=1, task_id=task_id)
    if not found:
        raise HTTPException(404, f"no task {task_id!r}")
    steps = store.task_steps(task_id, limit=MAX_STEPS_SHOWN + 1)
    return {
        **task_json(found[0]),
        "step_list": [step_json(step) for step in steps[:MAX_STEPS_SHOWN]],
        "step_list_truncated": len(steps) > MAX_STEPS_SHOWN,
    }


@router.get("/usage", summary="Usage by task type: tasks, steps, visible and hidden tokens, cost")
def usage(store: Ledger, caller: Reader, customer: str | None = None) -> list[dict[str, Any]]:
    found = store.task_types(readable_customer(caller, customer))
    return [
        {
            **asdict(row),
            "tokens_hidden": row.tokens_hidden,
            "cost_usd": format_nanousd(row.cost_nanousd),
        }
        for row in found
    ]


@router.get("/outcomes", response_model=Page, summary="Outcome claims and their lifecycle")
def list_outcomes(
    store: Ledger,
    caller: Reader,
    customer: str | None = None,
    status: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    only = readable_customer(caller, customer)

    def fetch(offset: int, count: int) -> list[Any]:
        return outcomes.states_page(store, only, offset, count)

    def shape(state: Any) -> dict[str, Any]:
        return state.as_json()  # type: ignore[no-any-return]

    if status is None:
        return page(fetch, cursor, limit, shape)
    return filtered_page(fetch, lambda s: s.lifecycle.status == status, cursor, limit, shape)


@router.post("/outcomes/{outcome_id}/{action}", summary="An auditor's or operator's verdict")
def decide_outcome(
    store: Ledger,
    outcome_id: str,
    action: str,
    caller: Admin,
    by: Annotated[str, Body(embed=True, description="who decides: auditor")] = "auditor",
    reason: Annotated[str | None, Body(embed=True, max_length=2000)] = None,
) -> dict[str, Any]:
    """`action` is verify, reject or reverse, checked against the outcome's lifecycle."""
    try:
        state = outcomes.decide(store, outcome_id, action, by, reason)
    except outcomes.OutcomeError as exc:
        code = 404 if str(exc).startswith("no outcome") else 422
        raise HTTPException(code, str(exc)) from None
    return state.as_json()


@router.get("/integrity", summary="Outcome integrity per customer and type, with flags")
async def integrity_report(
    store: Ledger,
    caller: Reader,
    period: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    customer: str | None = None,
) -> list[dict[str, Any]]:
    only = readable_customer(caller, customer)
    rows = await run_in_threadpool(integrity.report, store, period, only)
    return [row.as_json() for row in rows]


@router.get("/report", summary="Economics of a period: revenue, cost, margin, risks (admin)")
async def economics_report(
    store: Ledger,
    _: Admin,
    period: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    by: Annotated[str, Query(pattern="^(customer|plan|task_type|model)$")] = "customer",
) -> dict[str, Any]:
    """Provider cost and margins are the provider's own figures: admin keys only."""
    return await run_in_threadpool(economics.report, store, period, by)
