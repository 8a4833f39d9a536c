"""Records sent over HTTP: split a body, decode and cost its records, write, answer per record.

Decoding and costing run on the request's thread; writing goes through the server's one
LedgerWriter, which commits waiting requests together. The answer lists every record's
status in the order the records were sent, and the reason for each one not accepted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import msgspec

from payoff.core.errors import TooLarge, Unreadable
from payoff.nesting import too_deep_reason
from payoff.problems import Problem
from payoff.rows import COST_AT
from payoff.service.ingest import Line, take_out_refused
from payoff.service.writer import Written
from payoff.store.protocol import (
    ACCEPTED,
    CONFLICT,
    DUPLICATE,
    RECORD_KINDS,
    REJECTED,
    WriteBatch,
    WriteStatus,
)


class BodyError(Unreadable):
    """A request body cannot be read as records at all (each bad record is answered alone)."""


class TooManyRecords(TooLarge):
    """More records in one request than the server accepts."""


def split_body(body: bytes, max_records: int) -> list[Line]:
    """The records of a body: a JSON array, or JSON Lines. Numbered from 1, in order."""
    if body.lstrip()[:1] == b"[":
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except msgspec.DecodeError as exc:
            raise BodyError(f"body is not a JSON array of records: {exc}") from None
        except RecursionError:
            reason = too_deep_reason()
            raise BodyError(f"body is not a JSON array of records: it {reason}") from None
        lines = [(number, bytes(item)) for number, item in enumerate(items, start=1)]
    else:
        records = (line for line in body.splitlines() if line.strip())
        lines = list(enumerate(records, start=1))
    if not lines:
        raise BodyError("body holds no records: send a JSON array or JSON Lines")
    if len(lines) > max_records:
        raise TooManyRecords(
            f"{len(lines)} records in one request; at most {max_records} are accepted "
            "(split the batch)"
        )
    return lines


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
