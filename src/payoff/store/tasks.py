"""Task reads of the SQL store: tasks with their step totals, steps, types, activity.

Every figure is summed in SQL over the events of each task, exactly (`store.exact_sums`); the
pure core never sees a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, case, func, select

from payoff.store import schema as s
from payoff.store.exact_sums import COST_BOUND, TOKENS_BOUND, Sums, exact_rows
from payoff.store.in_lists import chunks
from payoff.store.protocol import EVENTS, TaskSummary, TaskTypeSummary


@dataclass(frozen=True)
class TaskActivity:
    customer: str
    task_type: str | None
    tasks: int
    cost_nanousd: int


class TaskQueries:
    engine: Engine

    def tasks(
        self,
        customer: str | None = None,
        *,
        limit: int = 1000,
        offset: int = 0,
        task_id: str | None = None,
    ) -> list[TaskSummary]:
        """Tasks ordered by customer and id, each with its steps' token and cost totals."""
        t = s.tasks.c

        def query(sums: Sums) -> Any:
            steps = _event_aggregates(sums, customer, task_id)
            found = (
                select(
                    t.id,
                    t.customer,
                    t.type,
                    t.status,
                    func.coalesce(steps.c.steps, 0),
                    *sums.outer(steps, "tokens_total", summed=False),
                    *sums.outer(steps, "tokens_visible", summed=False),
                    *sums.outer(steps, "cost_nanousd", summed=False),
                    *sums.outer(steps, "cost_visible_nanousd", summed=False),
                    func.coalesce(steps.c.unpriced_steps, 0),
                )
                .select_from(s.tasks.outerjoin(steps, steps.c.task == t.id))
                .order_by(t.customer, t.id)
                .limit(limit)
                .offset(offset)
            )
            if customer is not None:
                found = found.where(t.customer == customer)
            if task_id is not None:
                found = found.where(t.id == task_id)
            return found

        with self.engine.connect() as conn:
            return [TaskSummary(*row) for row in exact_rows(conn, query)]

    def task_steps(self, task_id: str, *, limit: int, offset: int = 0) -> list[dict[str, Any]]:
        """A task's steps in time order, as stored (costs in nano-USD, times in µs), each
        with the catalog that costed it: `cost_catalog` (the packaged prices' version) and
        `cost_overrides` (the digest of the overrides in force), None when not known."""
        e, p = s.events.c, s.price_catalogs.c
        shown = [e[name] for name in EVENTS.columns if name != "cost_catalog"]
        query = (
            select(
                *shown,
                e.costed_at_us,
                p.catalog.label("cost_catalog"),
                p.overrides_sha256.label("cost_overrides"),
            )
            .select_from(s.events.outerjoin(s.price_catalogs, p.id == e.cost_catalog))
            .where(e.task == task_id)
            .order_by(e.occurred_at_us, e.id)
            .limit(limit)
            .offset(offset)
        )
        with self.engine.connect() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def task_types(self, customer: str | None = None) -> list[TaskTypeSummary]:
        """Totals by task type: tasks, failures, steps, tokens, cost, outcomes."""
        t, o = s.tasks.c, s.outcomes.c
        outcome_counts = select(o.task, func.count().label("outcomes")).group_by(o.task).subquery()

        def query(sums: Sums) -> Any:
            steps = _event_aggregates(sums, customer)
            found = (
                select(
                    t.type,
                    func.count(),
                    func.sum(case((t.status == "failed", 1), else_=0)),
                    func.coalesce(func.sum(steps.c.steps), 0),
                    *sums.outer(steps, "tokens_total", summed=True),
                    *sums.outer(steps, "tokens_visible", summed=True),
                    *sums.outer(steps, "cost_nanousd", summed=True),
                    func.coalesce(func.sum(steps.c.unpriced_steps), 0),
                    func.coalesce(func.sum(outcome_counts.c.outcomes), 0),
                )
                .select_from(
                    s.tasks.outerjoin(steps, steps.c.task == t.id).outerjoin(
                        outcome_counts, outcome_counts.c.task == t.id
                    )
                )
                .group_by(t.type)
                .order_by(t.type)
            )
            if customer is not None:
                found = found.where(t.customer == customer)
            return found

        with self.engine.connect() as conn:
            return [TaskTypeSummary(*row) for row in exact_rows(conn, query)]

    def task_activity(
        self, start_us: int, end_us: int, customer: str | None = None
    ) -> list[TaskActivity]:
        """Per customer and task type: tasks started in the window, and what they cost."""
        t, e = s.tasks.c, s.events.c

        def query(sums: Sums) -> Any:
            cost = (
                select(e.task, *sums.inner(e.cost_nanousd, COST_BOUND, "cost"))
                .where(e.task.is_not(None))
                .group_by(e.task)
                .subquery()
            )
            found = (
                select(t.customer, t.type, func.count(), *sums.outer(cost, "cost", summed=True))
                .select_from(s.tasks.outerjoin(cost, cost.c.task == t.id))
                .where(t.started_at_us >= start_us, t.started_at_us < end_us)
                .group_by(t.customer, t.type)
            )
            return found if customer is None else found.where(t.customer == customer)

        with self.engine.connect() as conn:
            return [TaskActivity(*row) for row in exact_rows(conn, query)]

    def task_types_of(self, ids: Iterable[str]) -> dict[str, str | None]:
        """The type of each known task among `ids` (unknown ids are left out)."""
        t = s.tasks.c
        found: dict[str, str | None] = {}
        with self.engine.connect() as conn:
            for chunk in chunks(sorted(set(ids))):
                found.update(
                    {
                        row.id: row.type
                        for row in conn.execute(select(t.id, t.type).where(t.id.in_(chunk)))
                    }
                )
        return found


def _event_aggregates(sums: Sums, customer: str | None, task_id: str | None = None) -> Any:
    """Per-task sums over events, computed in SQL."""
    e = s.events.c
    visible_tokens = case((e.visible, e.output_tokens - e.reasoning_tokens), else_=0)
    query = select(
        e.task.label("task"),
        func.count().label("steps"),
        *sums.inner(e.input_tokens + e.output_tokens, TOKENS_BOUND, "tokens_total"),
        *sums.inner(visible_tokens, TOKENS_BOUND, "tokens_visible"),
        *sums.inner(e.cost_nanousd, COST_BOUND, "cost_nanousd"),
        *sums.inner(e.cost_visible_nanousd, COST_BOUND, "cost_visible_nanousd"),
        func.sum(case((e.cost_nanousd.is_(None), 1), else_=0)).label("unpriced_steps"),
    ).where(e.task.is_not(None))
    if customer is not None:
        query = query.where(e.customer == customer)
    if task_id is not None:
        query = query.where(e.task == task_id)
    return query.group_by(e.task).subquery()
