"""Splitting a request body into records: the same records whatever the form and whichever
way it is split, in time and memory bounded by the body, however many records it holds."""

from __future__ import annotations

import tracemalloc

import msgspec
import pytest

from factories import usage
from payoff.service.splitting import (
    MAX_PARTS_PER_RECORD,
    BodyError,
    TooManyRecords,
    _non_blank_lines,
    _scan_array,
    split_body,
)

RECORDS = [usage("a"), {"id": "b", "nested": [1, 2, {"c": "x,y]"}], "s": 'é,"]'}, 3, "text"]


def test_an_array_and_json_lines_split_into_the_same_records() -> None:
    expected = [(n, msgspec.json.encode(r)) for n, r in enumerate(RECORDS, start=1)]
    array = b" \n[" + b" ,\r\n ".join(line for _, line in expected) + b"]\n"
    lines = b"\n\n".join(line for _, line in expected) + b"\r\n  \n"
    assert split_body(array, 10) == expected
    assert split_body(lines, 10) == expected
    assert _scan_array(array, 11) == expected  # the bounded scan finds the same items


def test_lines_taken_one_at_a_time_are_the_lines_split_at_once() -> None:
    body = b'  {"a": 1}\r\n\r\n\t\n{}\rx y \n\x0b\n [1]\r\r\n last'
    at_once = [line.lstrip() for line in body.splitlines() if line.strip()]
    assert list(_non_blank_lines(body)) == at_once
    assert at_once == [b'{"a": 1}', b"{}", b"x y ", b"[1]", b"last"]


def test_records_among_millions_of_blank_lines_are_found() -> None:
    body = b"\n" * 3_000_000 + b"{}\r\n" + b" \r" * 1_000_000 + b"[]"
    assert split_body(body, 10) == [(1, b"{}"), (2, b"[]")]


@pytest.mark.parametrize("body", [b"[1,", b"[1 2]", b"[1] x", b"[,]", b"[" * 100_000, b"  ", b"[]"])
def test_a_body_that_is_not_records_is_refused_whole(body: bytes) -> None:
    with pytest.raises(BodyError):
        split_body(body, 10)
    if body.startswith(b"[") and body != b"[]":
        with pytest.raises(BodyError):  # the scan refuses as the whole decode does
            split_body(body + b"," * (10 * MAX_PARTS_PER_RECORD), 10)


@pytest.mark.parametrize(
    "body",
    [
        b"{}\n" * 3_000_000,  # 9 MB of JSON Lines
        b"[" + b"{}," * 3_000_000 + b"{}]",  # the same as an array: scanned, not decoded whole
        b"[" + b"1," * 3_000_000 + b"1]",
    ],
    ids=["json-lines", "array-of-objects", "array-of-numbers"],
)
def test_millions_of_tiny_records_are_refused_as_soon_as_the_limit_is_passed(body: bytes) -> None:
    # A whole decode of either holds over 200 MB of objects; the split stops early, holding
    # a few MB (measured by allocation rather than by time, which a loaded machine stretches).
    tracemalloc.start()
    try:
        with pytest.raises(TooManyRecords, match="more than 10000 records in one request"):
            split_body(body, 10_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 10**6


def test_records_up_to_the_limit_are_all_kept() -> None:
    body = b"[" + b",".join(b'{"n": %d}' % n for n in range(1000)) + b"]"
    assert [n for n, _ in split_body(body, 1000)] == list(range(1, 1001))
    assert len(_scan_array(body, 1001)) == 1000
