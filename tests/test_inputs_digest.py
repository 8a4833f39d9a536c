"""An invoice's inputs digest: sha256 of its windows' usage totals as `dataclasses.asdict` writes
them to JSON (without `seats` or `hours` when a window reads none, so that invoices written before
seats keep their digest), whatever the totals hold, computed without copying every outcome."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.core.rating import UsageTotals, inputs_digest

names = st.text(min_size=1, max_size=8)
counts = st.integers(min_value=0, max_value=2**70)
values = st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, places=6)
totals = st.builds(
    UsageTotals,
    active_days=st.integers(0, 31),
    period_days=st.integers(28, 31),
    tokens=st.dictionaries(names, counts, max_size=4),
    absorbed=st.dictionaries(names, counts, max_size=2),
    cost_nanousd=counts,
    unpriced_steps=counts,
    tasks=st.lists(st.tuples(st.none() | names, names, counts), max_size=5).map(tuple),
    outcomes=st.lists(st.tuples(names, values), max_size=20).map(tuple),
    keyed=st.lists(
        st.tuples(
            st.none() | names,
            st.none() | names,
            st.none() | names,
            st.tuples(counts, counts, counts, counts),
            counts,
            counts,
            st.booleans(),
        ),
        max_size=3,
    ).map(tuple),
    gpu_seconds=st.dictionaries(names, values, max_size=2),
    seats=st.lists(st.integers(0, 10**9), max_size=31).map(tuple),
    hours=st.lists(
        st.tuples(st.integers(0, 744), st.tuples(counts, counts, counts, counts)), max_size=5
    ).map(tuple),
)


KNOWN = "sha256:98a8ae9b54c70b316154eac827ddc80ba1f89a09435973f87a85dc0efe5afba4"
"""The digest of `test_a_known_digest_stays`'s month before usage by key existed."""


def as_asdict_writes_it(inputs: list[UsageTotals]) -> str:
    written = [dataclasses.asdict(t) for t in inputs]
    for value in written:
        for newer in ("keyed", "gpu_seconds", "seats", "hours"):
            if not value[newer]:
                del value[newer]  # read only for plans with filters, compute, seats or limits
    text = json.dumps(
        written,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


@settings(max_examples=200, deadline=None)
@given(st.lists(totals, max_size=4))
def test_the_digest_is_that_of_the_totals_as_asdict_writes_them(inputs: list[UsageTotals]) -> None:
    assert inputs_digest(inputs) == as_asdict_writes_it(inputs)


def test_a_known_digest_stays() -> None:
    month = UsageTotals(
        30,
        30,
        {"input": 10, "output": 3},
        {"reasoning": 2},
        1_500,
        1,
        ((None, "done", 2), ("triage", "failed", 1)),
        (("resolved", Decimal("12.50")), ("resolved", Decimal(0))),
    )
    assert inputs_digest([month]) == as_asdict_writes_it([month])
    # Pinned: totals without the newer inputs (every plan without filters, compute, seats or
    # limits) keep the digest stored invoices have.
    assert inputs_digest([month]) == KNOWN
    assert inputs_digest([dataclasses.replace(month, seats=(5,) * 30)]) != KNOWN
    assert inputs_digest([]) == as_asdict_writes_it([])
