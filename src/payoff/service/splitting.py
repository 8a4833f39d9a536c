"""Splitting a request body into records (a JSON array, or JSON Lines), in bounded memory
and time whatever the body holds.

A body of the bound's size (32 MiB by default) can hold ten million tiny records. Split all
at once, they become ten million objects (gigabytes), and each step over them holds the
interpreter for seconds; only then is the request refused for holding too many. So a body
is split all at once, at C speed, only when it cannot hold more than MAX_PARTS_PER_RECORD
parts (line breaks, or commas in an array) per record accepted; otherwise it is taken apart
one record at a time, and the split stops one record past the limit. Every scan over the
body is done in windows of SCAN_WINDOW bytes, so that no single step holds the interpreter
(and the server's event loop with it) for long.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator

import msgspec

from payoff.core.errors import TooLarge, Unreadable
from payoff.nesting import too_deep_reason
from payoff.service.ingest import Line


class BodyError(Unreadable):
    """A request body cannot be read as records at all (each bad record is answered alone)."""


class TooManyRecords(TooLarge):
    """More records in one request than the server accepts."""


MAX_PARTS_PER_RECORD = 64
"""Line breaks (or commas) per record accepted up to which a body is split all at once: at
most this many parts per record are then held, about 40 MB for the default 10,000."""
SCAN_WINDOW = 1024 * 1024
"""Bytes one step of a scan looks at: about 10 ms."""
ARRAY_START = re.compile(rb"\s*\[")
NOT_SPACE = re.compile(rb"[^ \t\n\r\f\v]")
"""What `bytes.strip` keeps: a line without it is blank."""
JSON_SPACE = re.compile(r"[ \t\n\r]*")
TOO_DEEP = f"body is not a JSON array of records: it {too_deep_reason()}"


def split_body(body: bytes, max_records: int) -> list[Line]:
    """The records of a body: a JSON array, or JSON Lines. Numbered from 1, in order.

    BodyError when it holds none or is not JSON Lines nor a JSON array; TooManyRecords as
    soon as more than `max_records` are seen.
    """
    most_parts = max_records * MAX_PARTS_PER_RECORD
    if ARRAY_START.match(body):
        lines = _array_items(body, max_records, most_parts)
    else:
        lines = _json_lines(body, max_records, most_parts)
    if not lines:
        raise BodyError("body holds no records: send a JSON array or JSON Lines")
    if len(lines) > max_records:
        raise TooManyRecords(
            f"more than {max_records} records in one request; at most {max_records} are "
            "accepted (split the batch)"
        )
    return lines


# -- JSON Lines ------------------------------------------------------------------------


def _json_lines(body: bytes, max_records: int, most_parts: int) -> list[Line]:
    """The non-blank lines of a JSON Lines body, at most `max_records + 1` of them (lines
    end at \\n, \\r or \\r\\n, as `bytes.splitlines` has them)."""
    if body.count(b"\n") + body.count(b"\r") < most_parts:
        records: Iterator[bytes] = (line for line in body.splitlines() if line.strip())
    else:
        records = _non_blank_lines(body)
    return list(itertools.islice(enumerate(records, start=1), max_records + 1))


def _non_blank_lines(body: bytes) -> Iterator[bytes]:
    """The lines of `body` that are not blank, one at a time, each from its first byte that
    is not white space (the white space before a record is no part of it)."""
    size, position = len(body), 0
    next_lf = next_cr = -1  # the next line break of each kind at or after `position`
    while position < size:
        window_end = min(position + SCAN_WINDOW, size)
        found = NOT_SPACE.search(body, position, window_end)
        if found is None:
            position = window_end
            continue
        start = found.start()
        if next_lf != size and next_lf < start:
            next_lf = _find(body, b"\n", start)
        if next_cr != size and next_cr < start:
            next_cr = _find(body, b"\r", start)
        position = min(next_lf, next_cr)
        yield body[start:position]


def _find(body: bytes, byte: bytes, start: int) -> int:
    found = body.find(byte, start)
    return len(body) if found < 0 else found


# -- JSON arrays -----------------------------------------------------------------------


def _array_items(body: bytes, max_records: int, most_parts: int) -> list[Line]:
    """The items of a JSON array body, at most `max_records + 1` of them.

    msgspec decodes the whole array at once, holding an object per item: 56 bytes each,
    18 times the body for an array of `{}`. It is used when the body cannot hold more than
    `most_parts` items (fewer commas); otherwise the items are scanned one at a time.
    """
    if body.count(b",") < most_parts:
        try:
            items = msgspec.json.decode(body, type=list[msgspec.Raw])
        except msgspec.DecodeError as exc:
            raise BodyError(f"body is not a JSON array of records: {exc}") from None
        except RecursionError:
            raise BodyError(TOO_DEEP) from None
        return [(number, bytes(item)) for number, item in enumerate(items[: max_records + 1], 1)]
    try:
        return _scan_array(body, max_records + 1)
    except ValueError as exc:  # json.JSONDecodeError is a ValueError
        raise BodyError(f"body is not a JSON array of records: {exc}") from None
    except RecursionError:
        raise BodyError(TOO_DEEP) from None


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
    if _at(text, position) == "]":
        return items
    while len(items) < most:
        _, end = _DECODER.raw_decode(text, position)
        items.append((len(items) + 1, body[position:end]))
        position = _after_space(text, end)
        if _at(text, position) == "]":
            if _after_space(text, position + 1) != len(text):
                raise ValueError(f"bytes follow the array's end at byte {position}")
            return items
        if _at(text, position) != ",":
            raise ValueError(f"expected ',' or ']' at byte {position}")
        position = _after_space(text, position + 1)
    return items


def _at(text: str, position: int) -> str:
    if position >= len(text):
        raise ValueError("the array is not closed")
    return text[position]


def _after_space(text: str, at: int) -> int:
    """The position of the first character at or after `at` that is not JSON white space."""
    while True:
        window_end = min(at + SCAN_WINDOW, len(text))
        found = JSON_SPACE.match(text, at, window_end)
        assert found is not None, "a pattern of zero or more characters always matches"
        if found.end() < window_end or window_end == len(text):
            return found.end()
        at = window_end
