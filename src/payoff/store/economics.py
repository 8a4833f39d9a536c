"""The economics side of the SQL store: usage buckets and task facts of a period.

Usage is summed by (customer, task, cost source, provider, model, batch, visible, day),
the finest grain a scenario needs to re-price exactly per price table, from the task rollup
(`store.rollups`): a period of a million events comes back as a few rows per task, never as
events. Sums are exact, however large.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Engine, func, select

from payoff.core.buckets import Bucket
from payoff.core.token_classes import PART_COLUMNS
from payoff.store import rollups
from payoff.store import schema as s
from payoff.store.task_dates import alive_within


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
        """The period's usage (as received by `as_of_us`) summed into buckets, from the task
        rollup (`store.rollups`)."""
        first_day, end_day = rollups.days_of(start_us, end_us)
        with rollups.reading(self.engine) as conn:
            rows, params = rollups.known_rows(conn, rollups.TASK_USAGE, as_of_us)
            c = rows.c
            keys = (
                c.customer,
                c.task,
                c.cost_source,
                c.provider,
                c.model,
                c.batch,
                c.visible,
                c.day,
            )
            query = (
                select(*keys, *rollups.summed(rows))
                .where(c.day >= first_day, c.day < end_day)
                .group_by(*keys)
                .having(func.sum(c.steps) != 0)
                # A fixed order: the same ledger gives the same buckets, whatever the plan.
                .order_by(*keys)
            )
            if customer is not None:
                query = query.where(c.customer == customer)
            return [_bucket(row, len(keys)) for row in conn.execute(query, params)]

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


def _bucket(row: Any, key_length: int) -> Bucket:
    """A bucket from its rollup row: '' keys as None, the flags as booleans."""
    customer, task, source, provider, model, batch, visible, day = row[:key_length]
    values = rollups.fold(row, key_length)
    fields: tuple[Any, ...] = (
        customer,
        *map(rollups.key_value, (task, source, provider, model)),
        bool(batch),
        bool(visible),
        day,
        values["steps"],
        *(values[part] for part in PART_COLUMNS),
        values["cost"],
        values["cost_visible"],
        values["unpriced"],
    )
    return Bucket(*fields)
