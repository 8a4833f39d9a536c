"""An invoice run reads a period's tasks and outcome claims by index, not the whole ledger.

SQLite's own query plans of the statements `tasks_by_day` and `verified_in` run say which
tables they read whole (`SCAN t`) and which they search by index (`SEARCH t USING INDEX`):
none of the tables that grow with the ledger may be read whole.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from payoff.core.periods import Period
from payoff.service.outcomes import verified_in
from payoff.store import open_store
from payoff.store.protocol import Store

NOV = Period.month("2026-11")
AS_OF = NOV.end_us + 1
GROWING = ("tasks", "task_updates", "outcomes", "attestations", "outcome_decisions")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "ledger.db")
    yield opened
    opened.close()


def plans_of(store: Store, call: Callable[[], Any]) -> list[str]:
    """The query plan lines of every SELECT the call runs."""
    engine = store.engine  # type: ignore[attr-defined]
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        call()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    lines = []
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        for statement, params in statements:
            lines += [row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {statement}", params)]
    return lines


def whole_reads(lines: list[str]) -> list[str]:
    return [line for line in lines if line.split(" ")[:2] in (["SCAN", t] for t in GROWING)]


def test_tasks_by_day_reads_the_period_by_index(store: Store) -> None:
    lines = plans_of(store, lambda: store.tasks_by_day(NOV.start_us, NOV.end_us, AS_OF))
    assert any("ix_task_updates_occurred" in line for line in lines), lines
    assert whole_reads(lines) == []


def test_verified_in_reads_the_claims_and_verdicts_of_the_period_by_index(store: Store) -> None:
    lines = plans_of(store, lambda: verified_in(store, NOV, AS_OF, None))
    assert any("ix_outcomes_occurred" in line for line in lines), lines
    assert whole_reads(lines) == []


def test_the_indexes_exist_after_migrating(store: Store) -> None:
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        names = set(conn.scalars(text("SELECT name FROM sqlite_master WHERE type = 'index'")))
    assert {"ix_tasks_started", "ix_task_updates_occurred", "ix_outcomes_occurred"} <= names
