"""Token classes of the core (`core/token_classes.py`) as SQL column expressions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql.expression import ColumnElement

from payoff.core.token_classes import PART_COLUMNS, Signed, class_columns


def signed_column(table: Table, terms: Signed) -> ColumnElement[Any]:
    """`a - b - c` over the table's columns, built left to right as one would write it."""
    (sign, name), *rest = terms
    column: ColumnElement[Any] = table.c[name] if sign > 0 else -table.c[name]
    for sign, name in rest:
        column = column + table.c[name] if sign > 0 else column - table.c[name]
    return column


def part_column(table: Table, part: str) -> ColumnElement[Any]:
    """One disjoint part a bucket keeps (`uncached`, `text_output`, ...) of each row."""
    return signed_column(table, PART_COLUMNS[part])


def class_column(table: Table, name: str) -> ColumnElement[Any]:
    """One plan token class (`input`, `output`, ...) of each row."""
    return signed_column(table, class_columns(name))
