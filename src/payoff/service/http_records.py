"""Records sent over HTTP: split a body, decode and cost its records, write, answer per record.

Splitting, bounded whatever the body holds, is in payoff.service.splitting.

Decoding and costing run on the request's thread; writing goes through the server's one
LedgerWriter, which commits waiting requests together. The answer lists every record's
status in the order the records were sent, and the reason for each one not accepted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from payoff.core.errors import Forbidden
from payoff.problems import Problem
from payoff.rows import COST_AT
from payoff.service.ingest import take_out_refused
from payoff.service.splitting import BodyError, TooManyRecords, split_body
from payoff.service.writer import Written
from payoff.store.protocol import (
    ACCEPTED,
    CONFLICT,
    DUPLICATE,
    RECORD_KINDS,
    REJECTED,
    SIGNALS,
    OutcomeStore,
    WriteBatch,
    WriteStatus,
)

__all__ = [
    "BodyError",
    "CustomerSignalRefused",
    "RecordsAnswer",
    "TooManyRecords",
    "answer_records",
    "check_customer_records",
    "split_body",
]


class CustomerSignalRefused(Forbidden):
    """A customer key sent records other than signals, or signals about another customer's
    tasks or outcomes: the whole request is refused (403), nothing is written."""


def check_customer_records(store: OutcomeStore, batch: WriteBatch, customer: str) -> None:
    """What a `customer:ID` key may write: signals about its own customer's tasks and
    outcomes, from the customer's systems. CustomerSignalRefused names what is not.

    A signal about a task or outcome not stored yet is left to the store, which rejects it
    as it does any signal about nothing known (a customer key cannot send tasks)."""
    others = len(batch) - len(batch.signals)
    if others:
        raise CustomerSignalRefused(
            f'a customer key may only send signals (records with "record": "signal"); '
            f"this request holds {others} other record(s): send them with an ingest key"
        )
    task_at, outcome_at = SIGNALS.column_index("task"), SIGNALS.column_index("outcome")
    tasks = {row[task_at] for row in batch.signals} - {None}
    claims = {row[outcome_at] for row in batch.signals} - {None}
    task_customers, outcome_customers = store.customers_of_subjects(tasks, claims)
    for row in batch.signals:
        for kind, subject, owners in (
            ("task", row[task_at], task_customers),
            ("outcome", row[outcome_at], outcome_customers),
        ):
            owner = owners.get(subject) if subject is not None else None
            if owner is not None and owner != customer:
                raise CustomerSignalRefused(
                    f"signal {row[0]!r} is about {kind} {subject!r}, which is not customer "
                    f"{customer!r}'s: a customer key sends signals about its own tasks and "
                    "outcomes only"
                )


@dataclass
class RecordsAnswer:
    """Per-record statuses (aligned with the records sent) and the problems among them."""

    statuses: list[str]
    problems: list[dict[str, Any]] = field(default_factory=list)
    unpriced: int = 0

    def as_json(self) -> dict[str, Any]:
        count = self.statuses.count
        return {
            "accepted": count(ACCEPTED),
            "duplicates": count(DUPLICATE),
            "conflicts": count(CONFLICT),
            "rejected": count(REJECTED),
            "unpriced": self.unpriced,
            "statuses": self.statuses,
            "problems": self.problems,
        }


def _problem(
    index: int, record_id: str | None, status: str, reason: str, at: str | None
) -> dict[str, Any]:
    return {"index": index, "id": record_id, "status": status, "field": at, "reason": reason}


UNSIGNED_VERDICT = (
    "a customer's verdict is accepted over HTTP only signed, at POST /v1/attestations"
)


def refuse_unsigned_verdicts(batch: WriteBatch, problems: list[Problem]) -> None:
    """Take attestation records out of a batch sent to /v1/events, as rejected problems.

    Over HTTP a verdict stands for the customer only when the customer signed it; a key
    that may write records must not be able to accept outcomes on a customer's behalf.
    """
    refusal = WriteStatus(REJECTED, UNSIGNED_VERDICT, "record")
    problems.extend(
        Problem(line, record, REJECTED, reason, at)
        for line, record, reason, at in take_out_refused(batch, itertools.repeat(refusal))
    )


def answer_records(
    count: int, batch: WriteBatch, problems: list[Problem], written: Written
) -> RecordsAnswer:
    """Fold build problems, lifecycle refusals and store statuses into one answer."""
    result = RecordsAnswer([REJECTED] * count)
    for kind in RECORD_KINDS:
        rows = getattr(batch, kind)
        for row, line, (status, reason, at) in zip(
            rows, batch.lines[kind], getattr(written.result, kind), strict=True
        ):
            result.statuses[line - 1] = status
            if status not in (ACCEPTED, DUPLICATE):
                result.problems.append(
                    _problem(line - 1, str(row[0]), status, reason or status, at)
                )
            elif kind == "events" and status == ACCEPTED and row[COST_AT] is None:
                result.unpriced += 1
    for problem in problems:
        assert problem.line is not None
        result.problems.append(
            _problem(problem.line - 1, problem.id, problem.status, problem.reason, problem.field)
        )
    for line, record_id, reason, at in written.refused:
        result.problems.append(_problem(line - 1, record_id, REJECTED, reason, at))
    result.problems.sort(key=lambda p: p["index"])
    return result
