"""Tables that never break or cut a number, at any terminal width.

Each table is a list of `Column`s over JSON rows (the same rows `--json` prints), so a
table shows the names and values of its JSON, formatted for people. Numbers, times and
identifiers (ids, keys, types: the "id" kind) are never wrapped, folded or cut: their columns
are exactly as wide as their widest cell. Only free text (names, descriptions, reasons) folds,
at word boundaries, and never narrower than the longest word of its header, so no header word
is split either. When the unbroken columns are wider than the terminal, the table is split
into parts, each repeating the key columns on the left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

Kind = Literal[
    "id", "text", "time", "count", "exact", "money", "price", "percent", "change", "ratio"
]
"""How a cell shows its JSON value (see `cell`); only "text" is ever broken over lines."""

TEXT_WIDTH_MAX = 28
"""A text column wider than this folds, even when the terminal has room."""
TEXT_WIDTH_MIN = 8
"""Free text folds down to this width (or its header's longest word) before a table is split."""
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
        """A number (or time): right-aligned."""
        return self.kind not in ("id", "text")

    @property
    def whole(self) -> bool:
        """Never broken over lines: numbers, times and identifiers."""
        return self.kind != "text"

    @property
    def header_word(self) -> int:
        """The length of the header's longest word: the column is never narrower."""
        return max(len(word) for word in self.header.split())


def _percent(value: Any) -> Decimal:
    return (Decimal(value) * 100).quantize(TENTH, ROUND_HALF_EVEN)


FORMATS: dict[Kind, Callable[[Any], str]] = {
    "id": str,  # an identifier is shown whole, as --json has it
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
    """Each column's width: whole cells whole, free text capped, never below a header word."""
    widths = []
    for index, column in enumerate(columns):
        longest = max((len(row[index]) for row in rows), default=0)
        if column.whole:
            widths.append(max(column.header_word, longest, 1))
        else:
            widths.append(max(min(longest, TEXT_WIDTH_MAX), column.header_word, 1))
    return widths


def _fit(columns: Sequence[Column], widths: Sequence[int], room: int) -> list[int] | None:
    """Widths that fit in `room` characters by folding free text (the widest first), or None.

    Free text folds down to `TEXT_WIDTH_MIN` but never below its header's longest word."""
    floors = [
        w if c.whole else max(min(w, TEXT_WIDTH_MIN), c.header_word)
        for w, c in zip(widths, columns, strict=True)
    ]
    budget = room - PER_COLUMN_EDGES * len(columns) - 1
    if sum(widths) <= budget:
        return list(widths)
    if sum(floors) > budget:
        return None
    level = max(widths)
    while sum(max(f, min(w, level)) for w, f in zip(widths, floors, strict=True)) > budget:
        level -= 1
    return [max(f, min(w, level)) for w, f in zip(widths, floors, strict=True)]


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


def _folding_ids(columns: Sequence[Column]) -> list[Column]:
    """The columns with identifiers shown as free text, which folds."""
    return [replace(column, kind="text") if column.kind == "id" else column for column in columns]


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
        part_widths = [widths[i] for i in part]
        fitted = _fit(chosen, part_widths, console.width)
        if fitted is None:
            # The key columns and one more are wider than the terminal even so: rather than
            # overflow it, this part folds its identifiers too (numbers stay whole).
            chosen = _folding_ids(chosen)
            fitted = _fit(chosen, part_widths, console.width) or part_widths
        label = title if len(parts) == 1 else f"{title} ({number} of {len(parts)})"
        table = Table(title=label)
        for column, width in zip(chosen, fitted, strict=True):
            header = Text(column.header, no_wrap=False, overflow="fold")
            if column.whole:
                table.add_column(
                    header,
                    justify="right" if column.numeric else "left",
                    no_wrap=True,
                    min_width=width,
                    max_width=width,
                )
            else:
                table.add_column(header, overflow="fold", max_width=width)
        for row in rows:
            table.add_row(*(Text(row[i]) for i in part))  # never read as markup
        console.print(table)
