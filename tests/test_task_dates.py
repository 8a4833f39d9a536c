"""The task dating rule said once: `core.statuses` in Python and `store.task_dates` in SQL
date the same tasks the same way, on edge rows of a real ledger (`tasks_by_day`,
`task_rows`), as of a time before later statuses arrived and after."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, literal, select

from factories import task, usage
from payoff.core.periods import US_PER_DAY, Period, iso_from_us
from payoff.core.statuses import (
    OPEN,
    TASK_STATUSES,
    alive_within,
    is_final,
    task_date_us,
    within,
)
from payoff.demo import as_lines
from payoff.service import ingest_lines
from payoff.service.clock import now_us
from payoff.store import open_store, task_dates
from payoff.store import schema as s
from payoff.store.sql import SqlStore

NOV = Period.month("2026-11")
START, END = NOV.start_us, NOV.end_us
MID = START + 14 * US_PER_DAY


def at(moment_us: int) -> str:
    return iso_from_us(moment_us)


def status(task_id: str, word: str, moment_us: int, **extra: Any) -> dict[str, Any]:
    return task(task_id, word, at(moment_us), **extra)


FIRST: list[dict[str, Any]] = [
    # ended exactly at the period's start: in it
    status("at-start", OPEN, START - 5 * US_PER_DAY, type="a"),
    status("at-start", "completed", START),
    # ended one microsecond before the end: in it; at the end: in the next period
    status("last-us", OPEN, MID, type="a"),
    status("last-us", "failed", END - 1),
    status("at-end", OPEN, MID, type="b"),
    status("at-end", "abandoned", END),
    # ended before the period, though it started in the one before: not in it
    status("before", "completed", START - 1, type="b"),
    # open: dated by its start, in the period or before it
    status("open-in", OPEN, MID, type="a"),
    status("open-before", OPEN, START - US_PER_DAY, type="a"),
    # a final status and OPEN at one instant: the final status wins
    status("tie", OPEN, MID + 7, type="c"),
    status("tie", "completed", MID + 7),
    # OPEN after a final status, later in time: open again, dated by its start
    status("reopened", "completed", MID, type="c"),
    status("reopened", OPEN, MID + US_PER_DAY),
    # usage only, no status: dated by its first step
    usage("step-1", task="no-status", time=at(MID + 3), task_type="a"),
    # open in the period; it ends in the next one, but that arrives after the as-of time
    status("ends-late", OPEN, MID, type="b"),
    # completed in the period; a later failure arrives after the as-of time
    status("changes-late", "completed", MID + 1, type="b"),
]
LATER: list[dict[str, Any]] = [
    status("ends-late", "completed", END + US_PER_DAY),
    status("changes-late", "failed", END - 2),
    # a status that happened before the as-of time, but arrived after it
    status("open-in", "completed", MID + 2),
]


def ingest(store: SqlStore, records: list[dict[str, Any]]) -> None:
    report = ingest_lines(store, as_lines(list(records)))
    assert report.accepted == len(records), report.problems


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> tuple[SqlStore, int, int]:
    store = open_store(Path(tmp_path_factory.mktemp("dates")) / "ledger.db")
    ingest(store, FIRST)
    between_us = now_us()
    while now_us() <= between_us:  # the later records arrive strictly after it
        time.sleep(0.001)
    ingest(store, LATER)
    return store, between_us, now_us()


def python_tasks_by_day(store: SqlStore, as_of_us: int) -> Counter[tuple[Any, ...]]:
    """`tasks_by_day` computed in Python with `core.statuses` from the records as of a time."""
    with store.engine.connect() as conn:
        tasks = conn.execute(select(s.tasks)).mappings().all()
        updates = conn.execute(select(s.task_updates)).mappings().all()
    counts: Counter[tuple[Any, ...]] = Counter()
    for row in tasks:
        if row["created_at_us"] > as_of_us:
            continue
        known = [u for u in updates if u["task"] == row["id"] and u["received_at_us"] <= as_of_us]
        # latest in time; at one instant a final status before OPEN
        latest = max(
            known, key=lambda u: (u["occurred_at_us"], is_final(u["status"])), default=None
        )
        word = None if latest is None else latest["status"]
        moment = task_date_us(
            word, None if latest is None else latest["occurred_at_us"], row["started_at_us"]
        )
        if within(moment, START, END):
            assert moment is not None
            day = (moment - START) // US_PER_DAY
            counts[(row["customer"], day, row["type"], word or OPEN)] += 1
    return counts


@pytest.mark.parametrize("word", [*TASK_STATUSES, None])
def test_sql_and_python_say_final_alike(word: str | None) -> None:
    with create_engine("sqlite://").connect() as conn:
        said = conn.execute(select(task_dates.is_final(literal(word)))).scalar()
    assert bool(said) is is_final(word)


def test_the_edge_rows_cover_each_side_of_each_edge(ledger: tuple[SqlStore, int, int]) -> None:
    store, between_us, after_us = ledger
    before, after = python_tasks_by_day(store, between_us), python_tasks_by_day(store, after_us)
    assert before != after  # the later statuses move tasks
    assert sum(before.values()) >= 6 and sum(after.values()) >= 5


@pytest.mark.parametrize("when", ["between", "after"])
def test_tasks_by_day_dates_tasks_as_python_does(
    ledger: tuple[SqlStore, int, int], when: str
) -> None:
    store, between_us, after_us = ledger
    as_of_us = between_us if when == "between" else after_us
    in_sql = Counter(
        {
            (r.customer, r.day, r.type, r.status): r.tasks
            for r in store.tasks_by_day(START, END, as_of_us)
        }
    )
    assert in_sql == python_tasks_by_day(store, as_of_us)


def test_task_rows_are_the_tasks_python_finds_alive(ledger: tuple[SqlStore, int, int]) -> None:
    store, _, _ = ledger
    with store.engine.connect() as conn:
        tasks = conn.execute(select(s.tasks)).mappings().all()
    alive = {
        row["id"]
        for row in tasks
        if alive_within(
            row["status"],
            row["status_at_us"],
            row["started_at_us"] if row["started_at_us"] is not None else row["created_at_us"],
            START,
            END,
        )
    }
    assert {row.task for row in store.task_rows(START, END)} == alive
    assert "before" not in alive and "at-start" in alive and "open-before" in alive
