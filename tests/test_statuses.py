"""Status vocabularies said once: each Literal and its tuple hold the same words."""

from __future__ import annotations

from typing import get_args

import pytest

from payoff.core import invoicing, outcomes
from payoff.core.statuses import (
    FINAL_STATUSES,
    INVOICE_STATUSES,
    OPEN,
    OUTCOME_STATUSES,
    TASK_STATUSES,
    InvoiceStatus,
    OutcomeStatus,
    TaskStatus,
    charged_status,
    ended_within,
    is_invoice_status,
)


@pytest.mark.parametrize(
    ("vocabulary", "words"),
    [
        (TaskStatus, TASK_STATUSES),
        (InvoiceStatus, INVOICE_STATUSES),
        (OutcomeStatus, OUTCOME_STATUSES),
    ],
)
def test_each_literal_type_and_its_tuple_hold_the_same_words(
    vocabulary: object, words: tuple[str, ...]
) -> None:
    assert get_args(vocabulary) == words


def test_a_task_is_open_or_final() -> None:
    assert (OPEN, *FINAL_STATUSES) == TASK_STATUSES


def test_the_lifecycle_tables_speak_the_vocabularies() -> None:
    for (status, _), new in outcomes.TRANSITIONS.items():
        assert {status, new} <= set(OUTCOME_STATUSES)
    for (status, _), new in invoicing.TRANSITIONS.items():
        assert {status, new} <= set(INVOICE_STATUSES)


@pytest.mark.parametrize(
    ("status", "at_us", "ended"),
    [
        ("completed", 10, True),
        ("failed", 19, True),
        ("abandoned", 20, False),  # the window is half-open
        ("completed", 9, False),
        ("completed", None, False),
        ("open", 15, False),
    ],
)
def test_a_task_ends_within_a_window_by_a_final_status_set_in_it(
    status: str, at_us: int | None, ended: bool
) -> None:
    assert ended_within(status, at_us, 10, 20) is ended


@pytest.mark.parametrize(
    ("count", "status", "charged"),
    [
        ("completed", "completed", True),
        ("completed", "failed", False),
        ("completed", "open", False),
        ("all", "completed", True),
        ("all", "failed", True),
        ("all", "abandoned", True),
        ("all", "open", False),
    ],
)
def test_a_task_charge_counts_completed_tasks_or_every_ended_one(
    count: str, status: str, charged: bool
) -> None:
    assert charged_status(count, status) is charged


@pytest.mark.parametrize("text", [*INVOICE_STATUSES, "quote", "issued", "Draft", ""])
def test_only_the_invoice_vocabulary_is_an_invoice_status(text: str) -> None:
    assert is_invoice_status(text) is (text in get_args(InvoiceStatus))
