"""Token classes: each said once, as a signed sum of an event's token columns.

Events keep provider counts in the inclusive scheme (`core/tokens.py`): `input_tokens`
includes cache reads and writes, `output_tokens` includes reasoning. Buckets keep disjoint
parts, and plans charge disjoint classes, each a sum of parts. Both are declared here as data;
the store turns a signed sum into a SQL column expression (`store/token_columns.py`) and
Python evaluates the same sum on values (`signed_tokens`), so that SQL aggregates and Python
attribution cannot count a class two ways.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Signed = tuple[tuple[int, str], ...]
"""(sign, event column) terms, summed: ((1, "output_tokens"), (-1, "reasoning_tokens"))."""

PART_COLUMNS: dict[str, Signed] = {
    "uncached": ((1, "input_tokens"), (-1, "cache_read_tokens"), (-1, "cache_write_tokens")),
    "cache_read": ((1, "cache_read_tokens"),),
    "cache_write": ((1, "cache_write_tokens"),),
    "text_output": ((1, "output_tokens"), (-1, "reasoning_tokens")),
    "reasoning": ((1, "reasoning_tokens"),),
}
"""The disjoint parts a bucket keeps (`Bucket` fields of the same names, in this order)."""

CLASS_PARTS: dict[str, tuple[str, ...]] = {
    "input": ("uncached",),
    "cache_read": ("cache_read",),
    "cache_write": ("cache_write",),
    "output": ("text_output", "reasoning"),
}
"""A plan's token classes as sums of parts: `input` is the uncached input (total input less
cache reads and writes); `output` is all output, reasoning included."""

TOKEN_CLASSES = tuple(CLASS_PARTS)

VISIBLE_PART = "text_output"
"""What a visible step shows its end user; every other token is hidden."""
VISIBLE_CLASS = next(name for name, parts in CLASS_PARTS.items() if VISIBLE_PART in parts)
"""The class holding visible output: hidden tokens of a budget exclude it only when the
budget counts this class."""


def class_columns(name: str) -> Signed:
    """A plan class as a signed sum of event columns, terms that cancel left out.

    `output` is text output plus reasoning, (output - reasoning) + reasoning: just
    `output_tokens`, so SQL sums one column, as it would written by hand.
    """
    coefficients: dict[str, int] = {}
    for part in CLASS_PARTS[name]:
        for sign, column in PART_COLUMNS[part]:
            coefficients[column] = coefficients.get(column, 0) + sign
    return tuple((sign, column) for column, sign in coefficients.items() if sign != 0)


def signed_tokens(terms: Signed, columns: Mapping[str, int]) -> int:
    """The signed sum evaluated on one event's (or a sum of events') column values."""
    return sum(sign * columns[column] for sign, column in terms)


def hidden_tokens(classes: Sequence[str], counted: int, visible: int) -> int:
    """Of `counted` tokens of `classes`, those hidden: less the visible output when the
    classes count it."""
    return counted - visible if VISIBLE_CLASS in classes else counted


def tokens_over_budget(hidden: int, budget: int) -> int:
    """Hidden tokens above a per-task budget; none when within it."""
    return hidden - budget if hidden > budget else 0
