"""Records sent over HTTP: split a body, decode and cost its records, write, answer per record.

Decoding and costing run on the request's thread; writing goes through the server's one
LedgerWriter, which commits waiting requests together. The answer lists every record's
status in the order the records were sent, and the reason for each one not accepted.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import msgspec

from payoff.core.errors import TooLarge, Unreadable
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


ARRAY_START = re.compile(rb"\s*\[")
RECORD_LINE = re.compile(rb"[ \t\f\v]*[^\s][^\r\n]*")
"""A line holding something other than white space: a record of JSON Lines (lines end at
\\n, \\r or \\r\\n, as `bytes.splitlines` has them)."""
MAX_ITEMS_PER_RECORD = 64
"""Above this many array items per record allowed (counted as commas, an upper bound), an
array is split by the bounded scan rather than decoded whole."""


def split_body(body: bytes, max_records: int) -> list[Line]:
    """The records of a body: a JSON array, or JSON Lines. Numbered from 1, in order.

    Memory and time stay bounded by the body's size, whatever it holds: the records are
    taken one by one, and the split stops at the first record beyond `max_records` (a
    body of millions of tiny records is refused as soon as that many are seen).
    """
    if ARRAY_START.match(body):
        lines = _array_items(body, max_records)
    else:
        records = (match.group() for match in RECORD_LINE.finditer(body))
        lines = list(itertools.islice(enumerate(records, start=1), max_records + 1))
    if not lines:
        raise BodyError("body holds no records: send a JSON array or JSON Lines")
    if len(lines) > max_records:
        raise TooManyRecords(
            f"more than {max_records} records in one request; at most {max_records} are "
            "accepted (split the batch)"
        )
    return lines


def _array_items(body: bytes, max_records: int) -> list[Line]:
    """The items of a JSON array body, at most `max_records + 1` of them.

    msgspec decodes the whole array at once, holding an object per item: 56 bytes each,
    18 times the body for an array of `{}`. It is used when the body cannot hold more than
    MAX_ITEMS_PER_RECORD items per record accepted (fewer commas); otherwise the items are
    scanned one at a time, and the scan stops one past `max_records`.
    """
    if body.count(b",") < max_records * MAX_ITEMS_PER_RECORD:
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except msgspec.DecodeError as exc:
            raise BodyError(f"body is not a JSON array of records: {exc}") from None
        except RecursionError:
            raise BodyError("body is not a JSON array of records: nested too deeply") from None
        return [(number, bytes(item)) for number, item in enumerate(items[: max_records + 1], 1)]
    try:
        return _scan_array(body, max_records + 1)
    except (ValueError, IndexError) as exc:  # json.JSONDecodeError is a ValueError
        raise BodyError(f"body is not a JSON array of records: {exc}") from None
    except RecursionError:
        raise BodyError("body is not a JSON array of records: nested too deeply") from None


WHITE_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder(
    parse_int=lambda _: 0, parse_float=lambda _: 0, parse_constant=lambda _: 0
)
"""Parses one JSON value to find where it ends; numbers are not converted (a record's own
decoder judges them, record by record)."""


def _scan_array(body: bytes, most: int) -> list[Line]:
    """Up to `most` items of a JSON array, each as its own bytes, read one at a time.

    The body is read as Latin-1, one character a byte, so positions in the text are
    positions in the body (and bytes that are not UTF-8 are left for each record's
    decoder to refuse, naming its line).
    """
    text = body.decode("latin-1")
    position = _after_space(text, text.index("[") + 1)
    items: list[Line] = []
    if text[position] == "]":
        return items
    while len(items) < most:
        _, end = _DECODER.raw_decode(text, position)
        items.append((len(items) + 1, body[position:end]))
        position = _after_space(text, end)
        if text[position] == "]":
            if _after_space(text, position + 1) != len(text):
                raise ValueError(f"bytes follow the array's end at byte {position}")
            return items
        if text[position] != ",":
            raise ValueError(f"expected ',' or ']' at byte {position}")
        position = _after_space(text, position + 1)
    return items


def _after_space(text: str, at: int) -> int:
    """The position of the first character at or after `at` that is not JSON white space."""
    found = WHITE_SPACE.match(text, at)
    assert found is not None, "a pattern of zero or more characters always matches"
    return found.end()


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
