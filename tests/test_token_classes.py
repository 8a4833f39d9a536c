"""Token classes said once: the table, its Python evaluation and its SQL form agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from factories import usage
from payoff.core.attribution import TaskUnits, over_budget
from payoff.core.buckets import Bucket
from payoff.core.economics import TaskUsage
from payoff.core.periods import Period
from payoff.core.token_classes import (
    CLASS_PARTS,
    PART_COLUMNS,
    TOKEN_CLASSES,
    class_columns,
    signed_tokens,
)
from payoff.core.tokens import TokenCounts
from payoff.demo import as_lines
from payoff.service import ingest_lines
from payoff.store import open_store
from payoff.store import schema as s
from payoff.store.protocol import Store
from payoff.store.token_columns import class_column, part_column

COLUMNS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens")
NOV = Period.month("2026-11")


def step(id: str, task: str | None, *counts: int, visible: bool = True) -> dict[str, Any]:
    """A usage record of (input, cache read, cache write, output, reasoning) tokens."""
    names = (*COLUMNS, "reasoning_tokens")
    return usage(id, task=task, visible=visible, **dict(zip(names, counts, strict=False)))


EDGES: list[dict[str, Any]] = [
    step("none", "t0", 0, 0, 0, 0),
    step("all-cached", "t1", 50, 50, 0, 0),
    step("all-written", "t1", 9, 0, 9, 1),
    step("all-reasoning", "t2", 0, 0, 0, 70, 70),
    step("hidden-step", "t2", 0, 0, 0, 30, visible=False),
    step("mixed", "t3", 900, 300, 100, 400, 150),
    step("exactly-at-budget", "t4", 100, 0, 0, 30),
    step("one-over-budget", "t5", 101, 0, 0, 31, 1),
    step("task-less", None, 5000, 0, 0, 5000, 4000),
]


def event_values(record: dict[str, Any]) -> dict[str, int]:
    names = (*COLUMNS, "reasoning_tokens")
    return {name: record.get(name, 0) for name in names}


@pytest.fixture
def edges(tmp_path: Path) -> Store:
    store = open_store(tmp_path / "edges.db")
    assert ingest_lines(store, as_lines(list(EDGES))).clean
    return store


def test_output_is_one_column_and_input_the_uncached_part() -> None:
    assert class_columns("output") == ((1, "output_tokens"),)
    assert class_columns("input") == PART_COLUMNS["uncached"]
    assert TOKEN_CLASSES == ("input", "cache_read", "cache_write", "output")


def test_every_part_belongs_to_exactly_one_class() -> None:
    parts = [part for parts in CLASS_PARTS.values() for part in parts]
    assert sorted(parts) == sorted(PART_COLUMNS)


@given(
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)
def test_bucket_counts_invert_the_part_table(
    input_: int, read: int, write: int, output: int, reasoning: int
) -> None:
    counts = TokenCounts(input_ + read + write, read, write, output + reasoning, reasoning)
    values = {f"{name}_tokens": value for name, value in counts._asdict().items()}
    parts = [signed_tokens(terms, values) for terms in PART_COLUMNS.values()]
    bucket = Bucket("c", "t", None, None, None, False, True, 0, 1, *parts, 0, 0, 0)
    assert bucket.counts == counts
    assert bucket.tokens == counts.total


def test_sql_and_python_count_each_class_alike_on_edge_rows(edges: Store) -> None:
    e = s.events.c
    by_id = {r["id"]: event_values(r) for r in EDGES}
    classes = [class_column(s.events, name) for name in TOKEN_CLASSES]
    parts = [part_column(s.events, part) for part in PART_COLUMNS]
    query = select(e.id, *classes, *parts)
    with edges.engine.connect() as conn:  # type: ignore[attr-defined]
        rows = list(conn.execute(query))
    assert len(rows) == len(EDGES)
    for id_, *counted in rows:
        values = by_id[id_]
        python = [signed_tokens(class_columns(name), values) for name in TOKEN_CLASSES]
        python += [signed_tokens(terms, values) for terms in PART_COLUMNS.values()]
        assert counted == python, id_


def test_usage_by_day_sums_the_classes_python_sums(edges: Store) -> None:
    (day,) = edges.usage_by_day(NOV.start_us, NOV.end_us, 2**62)  # type: ignore[attr-defined]
    for name in TOKEN_CLASSES:
        expected = sum(signed_tokens(class_columns(name), event_values(r)) for r in EDGES)
        assert getattr(day, name) == expected, name


@pytest.mark.parametrize(
    "classes",
    [("input",), ("output",), ("input", "output"), TOKEN_CLASSES, ("cache_read", "output")],
)
@pytest.mark.parametrize("budget", [0, 29, 30, 100, 101, 10_000])
def test_sql_and_python_agree_on_hidden_tokens_over_a_budget(
    edges: Store, classes: tuple[str, ...], budget: int
) -> None:
    buckets = edges.usage_buckets(NOV.start_us, NOV.end_us, 2**62)  # type: ignore[attr-defined]
    per_task: dict[str | None, TaskUsage] = {}
    for b in buckets:
        per_task.setdefault(b.task, TaskUsage()).add(b)
    units = [
        TaskUnits(t, tokens=u.tokens, visible_output=u.visible_output) for t, u in per_task.items()
    ]
    python = sum(over_budget(classes, budget, unit) for unit in units)
    hidden_over_budget = edges.hidden_over_budget  # type: ignore[attr-defined]
    rows = hidden_over_budget(NOV.start_us, NOV.end_us, 2**62, classes, budget)
    assert sum(row.absorbed for row in rows) == python
