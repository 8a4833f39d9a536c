"""The economics side of the SQL store: usage buckets and task facts of a period.

Usage is summed in SQL by (customer, task, cost source, provider, model, batch, visible,
day), the finest grain a scenario needs to re-price exactly per price table: a period of a
million events comes back as a few rows per task, never as events. Sums are exact, however
large (`store.exact_sums`).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

from sqlalchemy import Engine, case, func, select

from payoff.core.buckets import Bucket
from payoff.core.periods import US_PER_DAY
from payoff.core.token_classes import PART_COLUMNS
from payoff.store import schema as s
from payoff.store.costs import CostColumns, cost_columns
from payoff.store.exact_sums import COST_BOUND, TOKENS_BOUND, Sums, exact_rows
from payoff.store.task_dates import alive_within
from payoff.store.token_columns import part_column


class TaskRow(NamedTuple):
    customer: str
    task: str
    type: str | None
    status: str
    status_at_us: int | None


class EconomicsQueries:
    engine: Engine

    def usage_buckets(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[Bucket]:
        """The period's usage (as received by `as_of_us`) summed into buckets."""
        e = s.events.c
        day = (e.occurred_at_us // US_PER_DAY).label("day")

        def query(costs: CostColumns, sums: Sums) -> Any:
            source = costs.source.label("cost_source")
            keys = (e.customer, e.task, source, e.provider, e.model, e.batch, e.visible, day)
            found = (
                select(
                    *keys,
                    func.count(),
                    *(
                        column
                        for part in PART_COLUMNS
                        for column in sums.sum(
                            part_column(s.events, part), TOKENS_BOUND, default=None
                        )
                    ),
                    *sums.sum(costs.cost, COST_BOUND),
                    *sums.sum(costs.cost_visible, COST_BOUND),
                    func.sum(case((costs.cost.is_(None), 1), else_=0)),
                )
                .where(
                    e.occurred_at_us >= start_us,
                    e.occurred_at_us < end_us,
                    e.received_at_us <= as_of_us,
                )
                .group_by(*keys)
                # A fixed order: the same ledger gives the same buckets, whatever the plan.
                .order_by(*keys)
            )
            return found if customer is None else found.where(e.customer == customer)

        with self.engine.connect() as conn:
            costs = cost_columns(conn, as_of_us)  # as they were then: a recost moves none
            return [_bucket(row) for row in exact_rows(conn, partial(query, costs))]

    def task_rows(self, start_us: int, end_us: int, customer: str | None = None) -> list[TaskRow]:
        """Tasks alive in the period (`core.statuses.alive_within`): started (or, with no start
        known, created) before its end, and not ended before its start."""
        t = s.tasks.c
        query = (
            select(t.customer, t.id, t.type, t.status, t.status_at_us)
            .where(
                alive_within(
                    t.status,
                    t.status_at_us,
                    func.coalesce(t.started_at_us, t.created_at_us),
                    start_us,
                    end_us,
                )
            )
            .order_by(t.customer, t.id)
        )
        if customer is not None:
            query = query.where(t.customer == customer)
        with self.engine.connect() as conn:
            return [TaskRow(*row) for row in conn.execute(query)]


def _bucket(row: Any) -> Bucket:
    """A bucket from its row: the flags as booleans, the sums as integers (a backend may
    return SUM() as a decimal)."""
    values: tuple[Any, ...] = (*row[:5], bool(row[5]), bool(row[6]), *map(int, row[7:]))
    return Bucket(*values)
