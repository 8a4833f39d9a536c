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


def page_of_list(
    items: Sequence[Any],
    cursor: str | None,
    limit: int,
    shape: Callable[[Any], dict[str, Any]] = dict,
) -> dict[str, Any]:
    return page(lambda offset, count: items[offset : offset + count], cursor, limit, shape)
