"""The core's rule that dates a task in a billing period (`core/statuses.py`) as SQL.

Each function is the SQL twin of the core function of the same name, over column
expressions, so that `tasks_by_day` and `task_rows` cannot date a task another way than
Python does (tests/test_task_dates.py runs both on edge rows).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, or_
from sqlalchemy.sql.expression import ColumnElement

from payoff.core.statuses import OPEN


def is_final(status: ColumnElement[Any]) -> ColumnElement[bool]:
    """A status that ended its task. Every status but OPEN is final, so one comparison says
    it (a NULL status, none known yet, is not final)."""
    return and_(status.is_not(None), status != OPEN)


def task_date_us(
    status: ColumnElement[Any], status_at_us: ColumnElement[Any], started_at_us: ColumnElement[Any]
) -> ColumnElement[Any]:
    """The moment a task is dated by: its status time when final, else its start."""
    return case((is_final(status), status_at_us), else_=started_at_us)


def within(moment_us: ColumnElement[Any], start_us: int, end_us: int) -> ColumnElement[bool]:
    """The moment lies in [start_us, end_us)."""
    return and_(moment_us >= start_us, moment_us < end_us)


def alive_within(
    status: ColumnElement[Any],
    status_at_us: ColumnElement[Any],
    began_us: ColumnElement[Any],
    start_us: int,
    end_us: int,
) -> ColumnElement[bool]:
    """The task began before the end and had not ended before the start. The status column
    of `tasks` is never NULL: "not ended before" is OPEN, no status time, or a time from the
    start on."""
    not_ended_before = or_(status == OPEN, status_at_us.is_(None), status_at_us >= start_us)
    return and_(began_us < end_us, not_ended_before)
