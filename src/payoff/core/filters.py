"""Charge filters: which records a tokens charge counts, by provider, model, task type and
whether the call was batched (`batch: true` or `false`, compared as such).

A filter field is a pattern: literal text, where `*` stands for any run of characters
(possibly none); nothing else is special. A field the filter leaves out matches every
record; a field it names matches only records that have that field (a record without a
task type matches no `task_type` pattern, not even `*`).

Two filters *may overlap* unless they are provably disjoint: some field both name holds
patterns no text matches both. Deciding that is exact when a pattern is literal (does the
other match it?); between two patterns with `*` it is decided by their fixed ends: they are
disjoint when the text before their first `*` differs where both have a character, or the
text after their last `*` does. Anything else is taken to overlap (e.g. `gpt-5*` and
`*-mini`, which both match `gpt-5-mini`), and a plan refuses it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

FILTER_FIELDS = ("provider", "model", "task_type")
WILDCARD = "*"


@dataclass(frozen=True)
class ChargeFilter:
    """What one record key must hold for a charge to count it; None: anything."""

    provider: str | None = None
    model: str | None = None
    task_type: str | None = None
    batch: bool | None = None
    """True: batch calls only; False: the others only."""

    def fields(self) -> tuple[tuple[str, str | None], ...]:
        return tuple((name, getattr(self, name)) for name in FILTER_FIELDS)

    def matches(
        self, provider: str | None, model: str | None, task_type: str | None, batch: bool
    ) -> bool:
        if self.batch is not None and self.batch != batch:
            return False
        actual = {"provider": provider, "model": model, "task_type": task_type}
        for name, pattern in self.fields():
            value = actual[name]
            if pattern is not None and (value is None or not _matches(pattern, value)):
                return False
        return True

    def errors(self) -> list[str]:
        if self.batch is None and all(pattern is None for _, pattern in self.fields()):
            return [f"filters: name at least one of {', '.join(FILTER_FIELDS)}, batch"]
        return [
            f"filters.{name}: a non-empty pattern of at most 255 characters"
            for name, pattern in self.fields()
            if pattern is not None and not 0 < len(pattern) <= 255
        ]


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split(WILDCARD)), re.DOTALL)


def _matches(pattern: str, text: str) -> bool:
    return _compiled(pattern).fullmatch(text) is not None


def patterns_disjoint(one: str, other: str) -> bool:
    """Whether no text matches both patterns (True only when that is proved)."""
    if WILDCARD not in one:
        return not _matches(other, one)
    if WILDCARD not in other:
        return not _matches(one, other)
    head_one, head_other = one.split(WILDCARD, 1)[0], other.split(WILDCARD, 1)[0]
    tail_one, tail_other = one.rsplit(WILDCARD, 1)[1], other.rsplit(WILDCARD, 1)[1]
    return not _compatible(head_one, head_other) or not _compatible(
        tail_one[::-1], tail_other[::-1]
    )


def _compatible(one: str, other: str) -> bool:
    """Whether one is a prefix of the other."""
    shorter = min(len(one), len(other))
    return one[:shorter] == other[:shorter]


def filters_disjoint(one: ChargeFilter | None, other: ChargeFilter | None) -> bool:
    """Whether no record can match both filters (None: the charge counts every record)."""
    if one is None or other is None:
        return False
    if one.batch is not None and other.batch is not None and one.batch != other.batch:
        return True
    return any(
        a is not None and b is not None and patterns_disjoint(a, b)
        for (_, a), (_, b) in zip(one.fields(), other.fields(), strict=True)
    )
