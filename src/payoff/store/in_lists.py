"""Bounded `IN (...)` lookups: long key lists are asked for in chunks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

MAX_IN_LIST = 500
"""Keys per `IN (...)` lookup: well under every backend's bound-parameter limit."""

Key = TypeVar("Key")


def chunks(items: Sequence[Key], size: int = MAX_IN_LIST) -> Iterable[Sequence[Key]]:
    """`items` in consecutive slices of at most `size`."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
