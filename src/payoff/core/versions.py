"""Version numbers of plans and contracts: what an `ID@VERSION` reference may name."""

from __future__ import annotations

MAX_VERSION = 2**31 - 1
"""The largest version a plan or contract may have: a 32-bit integer on every backend."""


def version_of(text: str) -> int | None:
    """The version `text` names (ASCII digits, from 1 to MAX_VERSION), else None."""
    if not (text.isascii() and text.isdigit() and len(text) <= len(str(MAX_VERSION))):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_VERSION else None
