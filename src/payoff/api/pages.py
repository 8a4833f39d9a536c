"""Cursor pagination: a bounded page and an opaque cursor for the next one."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import HTTPException

from payoff.api.config import DEFAULT_PAGE, MAX_PAGE

MAX_OFFSET = 10**12
"""Beyond any ledger's row count; bounds what a forged cursor can ask of the database."""


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(400, "cursor is not one this server gave out") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise HTTPException(400, "cursor is not one this server gave out")
    return offset


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE:
        raise HTTPException(422, f"limit must be between 1 and {MAX_PAGE}")
    return limit


def page(
    fetch: Callable[[int, int], Sequence[Any]],
    cursor: str | None,
    limit: int = DEFAULT_PAGE,
    shape: Callable[[Any], dict[str, Any]] = dict,
) -> dict[str, Any]:
    """Fetch one item more than the page holds: it tells whether there is a next page."""
    offset, limit = decode_cursor(cursor), check_limit(limit)
    found = list(fetch(offset, limit + 1))
    more = len(found) > limit
    return {
        "items": [shape(item) for item in found[:limit]],
        "next_cursor": encode_cursor(offset + limit) if more else None,
    }


SCAN_CHUNK = 1_000
MAX_SCANNED = 20_000
"""Rows looked at for one filtered page; a page cut short by it still gives a next cursor."""


def filtered_page(
    fetch: Callable[[int, int], Sequence[Any]],
    keep: Callable[[Any], bool],
    cursor: str | None,
    limit: int,
    shape: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """A page of the rows `keep` accepts, when the filter can only be applied after reading.

    The cursor counts rows read, not rows kept, so no row is skipped or given twice; a page
    may hold fewer than `limit` rows (MAX_SCANNED read) and still have a next cursor.
    """
    offset, limit = decode_cursor(cursor), check_limit(limit)
    items: list[dict[str, Any]] = []
    scanned = 0
    while len(items) < limit and scanned < MAX_SCANNED:
        chunk_start = offset
        rows = fetch(offset, SCAN_CHUNK)
        for row in rows:
            offset += 1
            if keep(row):
                items.append(shape(row))
                if len(items) == limit:
                    break
        scanned += len(rows)
        if len(rows) < SCAN_CHUNK and offset == chunk_start + len(rows):
            return {"items": items, "next_cursor": None}  # read to the end
    return {"items": items, "next_cursor": encode_cursor(offset)}
