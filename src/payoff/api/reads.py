"""Reading the ledger over HTTP: tasks and their steps, usage by task type, outcomes and
verdicts, integrity and economics reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from fastapi.concurrency import run_in_threadpool

from payoff.api.auth import Admin, Reader, StoreDep, readable_customer
from payoff.api.body import BoundedJsonRoute
from payoff.api.config import DEFAULT_PAGE, MAX_PAGE
from payoff.api.models import ERRORS, Page
from payoff.api.pages import check_limit, decode_cursor, page, page_of
from payoff.service import economics, integrity, outcomes, tasks
from payoff.service import evidence as evidence_service

router = APIRouter(prefix="/v1", responses=ERRORS, route_class=BoundedJsonRoute)
Cursor = Annotated[str | None, Query(description="From the previous page's next_cursor.")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]


@router.get("/tasks", response_model=Page, summary="Tasks with their tokens and cost")
def list_tasks(
    store: StoreDep,
    caller: Reader,
    customer: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    only = readable_customer(caller, customer)
    return page(
        lambda offset, count: tasks.list_tasks(store, only, limit=count, offset=offset),
        cursor,
        limit,
        tasks.task_json,
    )


@router.get("/tasks/{task_id}", summary="One task and its steps")
def show_task(store: StoreDep, task_id: str, caller: Reader) -> dict[str, Any]:
    return tasks.task_with_steps(store, task_id, readable_customer(caller, None))


@router.get("/usage", summary="Usage by task type: tasks, steps, visible and hidden tokens, cost")
def usage(store: StoreDep, caller: Reader, customer: str | None = None) -> list[dict[str, Any]]:
    return tasks.usage_by_type(store, readable_customer(caller, customer))


@router.get("/outcomes", response_model=Page, summary="Outcome claims and their lifecycle")
def list_outcomes(
    store: StoreDep,
    caller: Reader,
    customer: str | None = None,
    status: str | None = None,
    cursor: Cursor = None,
    limit: Limit = DEFAULT_PAGE,
) -> dict[str, Any]:
    only = readable_customer(caller, customer)
    found = outcomes.states_page(store, only, status, decode_cursor(cursor), check_limit(limit))
    return page_of([state.as_json() for state in found.states], found.next_offset)


@router.post(
    "/outcomes/{outcome_id}/evidence",
    summary="Open an outcome's committed evidence (its customer, or admin)",
)
def open_outcome_evidence(
    store: StoreDep,
    outcome_id: str,
    caller: Reader,
    evidence: Annotated[
        dict[str, Any], Body(embed=True, description="the evidence object committed to")
    ],
    salt: Annotated[str, Body(embed=True, description="its salt: 32 to 128 lowercase hex")],
) -> dict[str, Any]:
    """Checked against the outcome's `evidence_digest`: a mismatch is refused (422) and
    flagged; a match is passed to the judge its contract names, and kept only when the
    contract retains evidence."""
    return evidence_service.open_evidence(
        store,
        outcome_id,
        evidence,
        salt,
        caller.scope,
        None if caller.is_admin else caller.customer,
    )


@router.post("/outcomes/{outcome_id}/{action}", summary="An auditor's or operator's verdict")
def decide_outcome(
    store: StoreDep,
    outcome_id: str,
    action: str,
    caller: Admin,
    by: Annotated[str, Body(embed=True, description="who decides: auditor")] = "auditor",
    reason: Annotated[str | None, Body(embed=True, max_length=2000)] = None,
) -> dict[str, Any]:
    """`action` is verify, reject or reverse, checked against the outcome's lifecycle."""
    return outcomes.decide(store, outcome_id, action, by, reason).as_json()


@router.get("/integrity", summary="Outcome integrity per customer and type, with flags")
async def integrity_report(
    store: StoreDep,
    caller: Reader,
    period: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    customer: str | None = None,
) -> list[dict[str, Any]]:
    only = readable_customer(caller, customer)
    rows = await run_in_threadpool(integrity.report, store, period, only)
    return [row.as_json() for row in rows]


@router.get("/report", summary="Economics of a period: revenue, cost, margin, risks (admin)")
async def economics_report(
    store: StoreDep,
    _: Admin,
    period: Annotated[str, Query(pattern=r"^\d{4}-\d{2}$")],
    by: Annotated[str, Query(pattern="^(customer|plan|task_type|model)$")] = "customer",
) -> dict[str, Any]:
    """Provider cost and margins are the provider's own figures: admin keys only."""
    return await run_in_threadpool(economics.report, store, period, by)
