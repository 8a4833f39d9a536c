"""The status vocabularies of tasks, invoices and outcomes, each said once.

Each vocabulary is a `Literal` type, for annotations and record decoding, and a tuple of the
same words in lifecycle order, for checks and messages; a test keeps the two in step.
Transitions live beside the lifecycles that apply them (`core/invoicing.py`,
`core/outcomes.py`).
"""

from __future__ import annotations

from typing import Literal, TypeGuard

TaskStatus = Literal["open", "completed", "failed", "abandoned"]
TASK_STATUSES: tuple[TaskStatus, ...] = ("open", "completed", "failed", "abandoned")
OPEN: TaskStatus = "open"
"""A task's status until it reports an end; the only status that is not final."""
FINAL_STATUSES: tuple[TaskStatus, ...] = ("completed", "failed", "abandoned")
"""A task with one of these has ended, at the time of that status."""


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


def ended_within(status: str, status_at_us: int | None, start_us: int, end_us: int) -> bool:
    """Whether a task ended in [start_us, end_us): its status is final and was set then.

    The store's `tasks_by_day` dates a task by the same rule in SQL (final status: its
    time; else its start).
    """
    return (
        status in FINAL_STATUSES and status_at_us is not None and start_us <= status_at_us < end_us
    )


OutcomeStatus = Literal["claimed", "verified", "rejected", "reversed"]
OUTCOME_STATUSES: tuple[OutcomeStatus, ...] = ("claimed", "verified", "rejected", "reversed")
