"""Each event's cost as it was at a time: what every question asked "as of" reads.

The current cost when it was set by that time, else the cost that held then, from
`superseded_costs` (a re-pricing keeps there the cost it replaces, `store/costs.py`). While
no cost was replaced after that time (every invoice run as of now), the query reads the
events' own columns.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, Table, case, literal, or_, select
from sqlalchemy.sql.expression import ColumnElement

from payoff.store import schema as s


class CostColumns(NamedTuple):
    """An event's cost, visible cost and cost source, as SQL expressions."""

    cost: ColumnElement[Any]
    cost_visible: ColumnElement[Any]
    source: ColumnElement[Any]


def current_costs(events: Table) -> CostColumns:
    """The cost columns of a table of events (`events`, or one shaped like it)."""
    return CostColumns(events.c.cost_nanousd, events.c.cost_visible_nanousd, events.c.cost_source)


CURRENT = current_costs(s.events)
"""The events' own cost columns: what every step costs now."""


def replaced_since(conn: Connection, as_of_us: int) -> bool:
    """Whether any step's cost was replaced after `as_of_us` (one indexed lookup)."""
    h = s.superseded_costs.c
    query = select(literal(1)).where(h.until_us > as_of_us).limit(1)
    return conn.execute(query).first() is not None


def cost_columns(conn: Connection, as_of_us: int) -> CostColumns:
    """Each event's cost columns as they were at `as_of_us`.

    The events' own columns while no cost was replaced after that time (the common case);
    otherwise `costs_as_of`.
    """
    return costs_as_of(as_of_us) if replaced_since(conn, as_of_us) else CURRENT


def costs_as_of(as_of_us: Any) -> CostColumns:
    """Each event's cost columns at `as_of_us` (a value or a bound parameter): for a step
    re-priced since, the cost that held then, the superseded cost with the first `until_us`
    after it."""
    e, h = s.events.c, s.superseded_costs.c
    current = or_(e.costed_at_us.is_(None), e.costed_at_us <= as_of_us)

    def as_of(column: str) -> ColumnElement[Any]:
        held = (
            select(h[column])
            .where(h.event_seq == e.seq, h.until_us > as_of_us)
            .order_by(h.until_us)
            .limit(1)
            .scalar_subquery()
        )
        return case((current, e[column]), else_=held)

    return CostColumns(as_of("cost_nanousd"), as_of("cost_visible_nanousd"), as_of("cost_source"))
