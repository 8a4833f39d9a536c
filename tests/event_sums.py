"""The rating and report aggregates summed from the events themselves, as the store summed
them before it kept rollups: the oracle the rollups are checked against."""

# ruff: noqa
from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine, and_, case, func, literal, select
from sqlalchemy.sql.expression import ColumnElement

from payoff.core.buckets import Bucket
from payoff.core.periods import US_PER_DAY
from payoff.core.token_classes import (
    PART_COLUMNS,
    TOKEN_CLASSES,
    VISIBLE_CLASS,
    VISIBLE_PART,
    hidden_tokens,
    tokens_over_budget,
)
from payoff.store import schema as s
from payoff.store.as_of_costs import CostColumns, cost_columns
from payoff.store.billing import DayBudget, DayUsage, _day
from payoff.store.exact_sums import COST_BOUND, TOKENS_BOUND, Sums, exact_rows, plainly_or_in_parts
from payoff.store.token_columns import class_column, part_column


class EventSums:
    """Bound to an engine, with the store's method names."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _usage_filter(
        self, table: Any, start_us: int, end_us: int, as_of_us: int, customer: str | None
    ) -> ColumnElement[bool]:
        c = table.c
        where = and_(
            c.occurred_at_us >= start_us, c.occurred_at_us < end_us, c.received_at_us <= as_of_us
        )
        return and_(where, c.customer == customer) if customer is not None else where

    def usage_by_day(
        self, start_us: int, end_us: int, as_of_us: int, customer: str | None = None
    ) -> list[DayUsage]:
        e = s.events.c
        day = _day(e.occurred_at_us, start_us)

        def query(cost: Any, sums: Sums) -> Any:
            return (
                select(
                    e.customer,
                    day,
                    *(
                        column
                        for name in TOKEN_CLASSES
                        for column in sums.sum(
                            class_column(s.events, name), TOKENS_BOUND, default=None
                        )
                    ),
                    *sums.sum(cost, COST_BOUND),
                    func.sum(case((cost.is_(None), 1), else_=0)),
                )
                .where(self._usage_filter(s.events, start_us, end_us, as_of_us, customer))
                .group_by(e.customer, day)
            )

        with self.engine.connect() as conn:
            cost = cost_columns(conn, as_of_us).cost  # as it was then: a recost moves none
            return [DayUsage._make(row) for row in exact_rows(conn, partial(query, cost))]

    def hidden_over_budget(
        self,
        start_us: int,
        end_us: int,
        as_of_us: int,
        classes: Sequence[str],
        budget: int,
        customer: str | None = None,
    ) -> list[DayBudget]:
        """Per customer and day: hidden tokens of the counted classes above `budget`, per task.

        A task's hidden tokens in the window are its counted tokens less its visible ones
        (`core.token_classes.hidden_tokens`); it belongs to the day of its first step in the
        window. Summed in SQL; when a sum passes 64 bits, each task's parts are put together
        here instead (`store.exact_sums`).
        """
        e = s.events.c
        counted: Any = literal(0)
        for name in classes:
            counted = counted + class_column(s.events, name)
        visible: Any = case((e.visible, part_column(s.events, VISIBLE_PART)), else_=0)

        def per_task(*sums: ColumnElement[Any]) -> Any:
            return (
                select(
                    e.customer.label("customer"),
                    func.min(e.occurred_at_us).label("started"),
                    *sums,
                )
                .where(
                    and_(
                        self._usage_filter(s.events, start_us, end_us, as_of_us, customer),
                        e.task.is_not(None),
                    )
                )
                .group_by(e.customer, e.task)
            )

        # The SQL twin of `token_classes.hidden_tokens` and `tokens_over_budget`.
        hidden = func.sum(counted) - (func.sum(visible) if VISIBLE_CLASS in classes else 0)
        tasks = per_task(hidden.label("hidden")).subquery()
        day = _day(tasks.c.started, start_us)
        over = case((tasks.c.hidden > budget, tasks.c.hidden - budget), else_=0)
        query = select(tasks.c.customer, day, func.sum(over)).group_by(tasks.c.customer, day)
        with self.engine.connect() as conn:
            return plainly_or_in_parts(
                conn,
                lambda: [DayBudget(*row) for row in conn.execute(query)],
                lambda: _over_budget_in_parts(
                    conn, per_task, (counted, visible), classes, budget, start_us
                ),
            )

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
                # A fixed order: the same ledger gives the same buckets, whatever the plan
                # (no key first, on any backend, as the rollups' '' sorts).
                .order_by(*(key.nulls_first() for key in keys))
            )
            return found if customer is None else found.where(e.customer == customer)

        with self.engine.connect() as conn:
            costs = cost_columns(conn, as_of_us)  # as they were then: a recost moves none
            return [_bucket(row) for row in exact_rows(conn, partial(query, costs))]


def _over_budget_in_parts(
    conn: Connection,
    per_task: Callable[..., Any],
    counted_and_visible: tuple[Any, Any],
    classes: Sequence[str],
    budget: int,
    start_us: int,
) -> list[DayBudget]:
    """`hidden_over_budget` with each task's sums in parts, put together and judged here."""
    sums = Sums(split=True)
    counted, visible = counted_and_visible
    result = conn.execute(
        per_task(*sums.sum(counted, TOKENS_BOUND), *sums.sum(visible, TOKENS_BOUND))
    )
    absorbed: dict[tuple[str, int], int] = defaultdict(int)
    for customer, started, task_counted, task_visible in sums.folded(list(result.keys()), result):
        hidden = hidden_tokens(classes, task_counted, task_visible)
        absorbed[(customer, (started - start_us) // US_PER_DAY)] += tokens_over_budget(
            hidden, budget
        )
    return [DayBudget(customer, day, tokens) for (customer, day), tokens in absorbed.items()]


def _bucket(row: Any) -> Bucket:
    """A bucket from its row: the flags as booleans, the sums as integers (a backend may
    return SUM() as a decimal)."""
    values: tuple[Any, ...] = (*row[:5], bool(row[5]), bool(row[6]), *map(int, row[7:]))
    return Bucket(*values)
