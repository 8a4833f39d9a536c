"""The budget-advice side of the SQL store: the tasks of a type that started in a period,
each with its hidden tokens and cost, and the outcomes claimed for them.

Both are streamed: rows come from the cursor as the caller reads them, one per task (summed
in SQL over the task's steps) or per outcome, never as events. Sums are taken in parts
(`store.exact_sums`), so they are exact however large, without a second pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from sqlalchemy import Engine, and_, case, func, select
from sqlalchemy.sql.expression import ColumnElement

from payoff.store import schema as s
from payoff.store.as_of_costs import cost_columns
from payoff.store.exact_sums import COST_BOUND, TOKENS_BOUND, Sums
from payoff.store.outcomes import StoredOutcome, _outcome

STREAMED_ROWS = 1000
"""Rows fetched from the database at a time: what a streamed read holds in memory."""


class TaskTrialRow(NamedTuple):
    customer: str
    task: str
    steps: int
    tokens_hidden: int
    cost_nanousd: int
    unpriced_steps: int


class TaskSelection(NamedTuple):
    """Tasks of one type whose first record falls in [start, end), known by `as_of_us`."""

    task_type: str
    start_us: int
    end_us: int
    as_of_us: int
    customer: str | None = None

    def where(self) -> ColumnElement[bool]:
        t = s.tasks.c
        began = func.coalesce(t.started_at_us, t.created_at_us)
        chosen = and_(
            t.type == self.task_type,
            began >= self.start_us,
            began < self.end_us,
            t.created_at_us <= self.as_of_us,
        )
        return chosen if self.customer is None else and_(chosen, t.customer == self.customer)


class AdviceQueries:
    engine: Engine

    def task_trials(self, selection: TaskSelection) -> Iterator[TaskTrialRow]:
        """The selected tasks by id, each with its steps received by the as-of time summed:
        hidden tokens (every token but the visible output), cost as it was then, and the
        steps without a price."""
        e, t = s.events.c, s.tasks.c
        with self.engine.connect() as conn:
            costs = cost_columns(conn, selection.as_of_us)
            sums = Sums(split=True)  # always in parts: a streamed query is never run twice
            visible = case((e.visible, e.output_tokens - e.reasoning_tokens), else_=0)
            steps = (
                select(
                    e.task.label("task"),
                    func.count().label("steps"),
                    *sums.inner(e.input_tokens + e.output_tokens - visible, TOKENS_BOUND,
                                "tokens_hidden"),
                    *sums.inner(costs.cost, COST_BOUND, "cost_nanousd"),
                    func.sum(case((costs.cost.is_(None), 1), else_=0)).label("unpriced"),
                )
                .where(
                    e.task.in_(select(t.id).where(selection.where())),
                    e.received_at_us <= selection.as_of_us,
                )
                .group_by(e.task)
                .subquery()
            )  # fmt: skip
            query = (
                select(
                    t.customer,
                    t.id,
                    func.coalesce(steps.c.steps, 0),
                    *sums.outer(steps, "tokens_hidden", summed=False),
                    *sums.outer(steps, "cost_nanousd", summed=False),
                    func.coalesce(steps.c.unpriced, 0),
                )
                .select_from(s.tasks.outerjoin(steps, steps.c.task == t.id))
                .where(selection.where())
                .order_by(t.id)
            )
            result = conn.execution_options(yield_per=STREAMED_ROWS).execute(query)
            keys = list(result.keys())
            for row in result:
                customer, task, *counts = sums.folded(keys, [row])[0]
                yield TaskTrialRow(customer, task, *map(int, counts))

    def outcomes_of_tasks(self, selection: TaskSelection) -> Iterator[StoredOutcome]:
        """The outcomes claimed for the selected tasks and received by the as-of time, by id."""
        o, t = s.outcomes.c, s.tasks.c
        query = (
            select(s.outcomes)
            .where(
                o.task.in_(select(t.id).where(selection.where())),
                o.received_at_us <= selection.as_of_us,
            )
            .order_by(o.id)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=STREAMED_ROWS).execute(query):
                yield _outcome(row)
