"""Tables that never break or cut a number, at any terminal width.

Each table is a list of `Column`s over JSON rows (the same rows `--json` prints), so a
table shows the names and values of its JSON, formatted for people. A number is never
wrapped, folded or cut: numeric columns are exactly as wide as their widest cell, and only
text (ids, names, headers) folds. When the numbers alone are wider than the terminal, the
table is split into parts, each repeating the key columns on the left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

Kind = Literal["text", "time", "count", "exact", "money", "price", "percent", "change", "ratio"]
"""How a cell shows its JSON value: see `cell`."""

TEXT_WIDTH_MAX = 28
"""A text column wider than this folds, even when the terminal has room."""
TEXT_WIDTH_MIN = 8
"""Text folds down to this width before a table is split into parts."""
CENT = Decimal("0.01")
PRICE_PLACES = Decimal("0.0001")
TENTH = Decimal("0.1")
PER_COLUMN_EDGES = 3
"""Characters a column adds besides its cells: one space each side and one rule."""


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    kind: Kind = "text"

    @property
    def numeric(self) -> bool:
        return self.kind != "text"


def _percent(value: Any) -> Decimal:
    return (Decimal(value) * 100).quantize(TENTH, ROUND_HALF_EVEN)


FORMATS: dict[Kind, Callable[[Any], str]] = {
    "text": str,
    "time": str,  # RFC 3339, as --json has it: never folded either
    "exact": str,  # a number shown as --json has it (exact amounts in a currency)
    "count": lambda value: f"{value:,}",
    "money": lambda value: f"{Decimal(value).quantize(CENT, ROUND_HALF_EVEN):,}",
    "price": lambda value: f"{Decimal(value).quantize(PRICE_PLACES, ROUND_HALF_EVEN):,}",
    "percent": lambda value: f"{_percent(value)} %",
    "change": lambda value: f"{_percent(value):+} %",
    "ratio": lambda value: f"{Decimal(value).quantize(CENT, ROUND_HALF_EVEN):,}",
}
"""Money to the cent (prices per unit to 1/100 of a cent): the exact figures stay in
--json. Shares and rates as percentages to a tenth; changes with their sign."""


def cell(value: Any, kind: Kind) -> str:
    """The text of one value; "-" when it is unknown (null in JSON)."""
    return "-" if value is None else FORMATS[kind](value)


def cells(row: dict[str, Any], columns: Sequence[Column]) -> list[str]:
    return [cell(row[column.key], column.kind) for column in columns]


def _widths(columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> list[int]:
    """Each column's width: numbers whole, headers by their longest word, text capped."""
    widths = []
    for index, column in enumerate(columns):
        word = max(len(part) for part in column.header.split())
        longest = max((len(row[index]) for row in rows), default=0)
        if column.numeric:
            widths.append(max(word, longest, 1))
        else:
            widths.append(max(min(longest, TEXT_WIDTH_MAX), min(word, TEXT_WIDTH_MAX), 1))
    return widths


def _fit(columns: Sequence[Column], widths: Sequence[int], room: int) -> list[int] | None:
    """Widths that fit in `room` characters by folding text (the widest first), or None."""
    fixed = sum(w for w, c in zip(widths, columns, strict=True) if c.numeric)
    text = [w for w, c in zip(widths, columns, strict=True) if not c.numeric]
    budget = room - fixed - PER_COLUMN_EDGES * len(columns) - 1
    if sum(text) <= budget:
        return list(widths)
    if sum(min(w, TEXT_WIDTH_MIN) for w in text) > budget:
        return None
    level = max(text)
    while sum(min(w, level) for w in text) > budget:
        level -= 1
    return [w if c.numeric else min(w, level) for w, c in zip(widths, columns, strict=True)]


def _parts(columns: Sequence[Column], widths: list[int], room: int, keys: int) -> list[list[int]]:
    """Column indexes of each part: the key columns, then as many others as fit."""
    parts: list[list[int]] = []
    current = list(range(keys))
    for index in range(keys, len(columns)):
        trial = [*current, index]
        fits = _fit([columns[i] for i in trial], [widths[i] for i in trial], room) is not None
        if fits or len(current) == keys:
            current = trial
        else:
            parts.append(current)
            current = [*range(keys), index]
    parts.append(current)
    return parts


def show(
    console: Console,
    title: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[str]],
    keys: int = 1,
) -> None:
    """Print `rows` (cells as text) under `columns`, in as many parts as the width needs."""
    widths = _widths(columns, rows)
    parts = [list(range(len(columns)))]
    if _fit(columns, widths, console.width) is None:
        parts = _parts(columns, widths, console.width, keys)
    for number, part in enumerate(parts, start=1):
        chosen = [columns[i] for i in part]
        fitted = _fit(chosen, [widths[i] for i in part], console.width)
        label = title if len(parts) == 1 else f"{title} ({number} of {len(parts)})"
        table = Table(title=label)
        for column, width in zip(chosen, fitted or [widths[i] for i in part], strict=True):
            header = Text(column.header, no_wrap=False, overflow="fold")
            if column.numeric:
                table.add_column(
                    header, justify="right", no_wrap=True, min_width=width, max_width=width
                )
            else:
                table.add_column(header, overflow="fold", max_width=width)
        for row in rows:
            table.add_row(*(Text(row[i]) for i in part))  # never read as markup
        console.print(table)
