"""The status vocabularies of tasks, invoices and outcomes, each said once, and the rule
that dates a task in a billing period.

Each vocabulary is a `Literal` type, for annotations and record decoding, and a tuple of the
same words in lifecycle order, for checks and messages; a test keeps the two in step.
Transitions live beside the lifecycles that apply them (`core/invoicing.py`,
`core/outcomes.py`).

A task is dated by the time of its status when that status is final (it ended then), else by
its start: it counts in the period holding that date, so an open task counts once, when it
ends. The store turns the same rule into SQL conditions (`store/task_dates.py`); a parity
test holds the two to the same answers on edge rows.
"""

from __future__ import annotations

from typing import Literal, TypeGuard

TaskStatus = Literal["open", "completed", "failed", "abandoned"]
TASK_STATUSES: tuple[TaskStatus, ...] = ("open", "completed", "failed", "abandoned")
OPEN: TaskStatus = "open"
"""A task's status until it reports an end; the only status that is not final."""
FINAL_STATUSES: tuple[TaskStatus, ...] = ("completed", "failed", "abandoned")
"""A task with one of these has ended, at the time of that status. Every status but OPEN
is final (a test holds the vocabulary to that): SQL says "final" as "not OPEN"."""


def is_final(status: str | None) -> bool:
    """Whether a task with this status has ended (no status known: it has not)."""
    return status in FINAL_STATUSES


def task_date_us(
    status: str | None, status_at_us: int | None, started_at_us: int | None
) -> int | None:
    """The moment a task is dated by: its status time when final, else its start."""
    return status_at_us if is_final(status) else started_at_us


def within(moment_us: int | None, start_us: int, end_us: int) -> bool:
    """Whether a moment lies in the half-open window [start_us, end_us)."""
    return moment_us is not None and start_us <= moment_us < end_us


def ended_within(status: str, status_at_us: int | None, start_us: int, end_us: int) -> bool:
    """Whether a task ended in [start_us, end_us): its status is final and was set then."""
    return is_final(status) and within(status_at_us, start_us, end_us)


def ended_before(status: str | None, status_at_us: int | None, start_us: int) -> bool:
    """Whether a task had ended before `start_us`: a final status set before it."""
    return is_final(status) and status_at_us is not None and status_at_us < start_us


def alive_within(
    status: str | None, status_at_us: int | None, began_us: int, start_us: int, end_us: int
) -> bool:
    """Whether a task lived in [start_us, end_us): it began before the end and had not
    ended before the start (the store's `task_rows`)."""
    return began_us < end_us and not ended_before(status, status_at_us, start_us)


def charged_status(count: str, status: str) -> bool:
    """Whether a task charge counting `count` ("completed", or "all" that ended) counts a
    task of `status`: rating and attribution both ask this."""
    return status == "completed" if count == "completed" else status in FINAL_STATUSES


InvoiceStatus = Literal["draft", "finalized", "paid", "void"]
INVOICE_STATUSES: tuple[InvoiceStatus, ...] = ("draft", "finalized", "paid", "void")
BILLED_STATUSES: tuple[InvoiceStatus, ...] = ("finalized", "paid")
"""An invoice with one of these bills its period: a new run leaves that period alone."""


def is_invoice_status(text: str) -> TypeGuard[InvoiceStatus]:
    """Whether stored or sent text is one of the invoice statuses."""
    return text in INVOICE_STATUSES


OutcomeStatus = Literal["claimed", "verified", "rejected", "reversed"]
OUTCOME_STATUSES: tuple[OutcomeStatus, ...] = ("claimed", "verified", "rejected", "reversed")
