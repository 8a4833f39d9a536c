"""Cursor pagination: a bounded page and an opaque cursor for the next one."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from typing import Any

from payoff.api.config import DEFAULT_PAGE, MAX_PAGE
from payoff.api.errors import CursorError

MAX_OFFSET = 10**12
"""Beyond any ledger's row count; bounds what a forged cursor can ask of the database."""


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError):
        raise CursorError("cursor is not one this server gave out") from None
    if not 0 <= offset <= MAX_OFFSET:
        raise CursorError("cursor is not one this server gave out")
    return offset


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def check_limit(limit: int) -> int:
    # Every route declares the bound on its query (Query(ge=1, le=MAX_PAGE)), so FastAPI has
    # refused any other limit before a page is read: one here is a route without it.
    assert 1 <= limit <= MAX_PAGE, f"limit {limit} outside 1..{MAX_PAGE}: the route must bound it"
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
    return page_of([shape(item) for item in found[:limit]], offset + limit if more else None)


def page_of(items: list[dict[str, Any]], next_offset: int | None) -> dict[str, Any]:
    """A page as the API answers it: its items, and the cursor of the next (None at the end)."""
    return {
        "items": items,
        "next_cursor": None if next_offset is None else encode_cursor(next_offset),
    }
