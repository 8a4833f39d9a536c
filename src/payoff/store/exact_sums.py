"""Exact sums of integer columns, whatever the ledger holds.

SQLite sums integers in 64 bits and raises "integer overflow" past 2**63: ten steps at the
largest cost a record may carry (just under 10**18 nano-USD) are enough. A query here sums
in one of two ways:

- plainly: SUM(x). Exact whenever every sum fits 64 bits; when one does not, SQLite raises,
  it never rounds (and PostgreSQL's SUM of a BIGINT is a NUMERIC, which cannot overflow).
- in parts: x = sum(part_i << PART_BITS * i), each part summed alone in SQL and the parts put
  back together in Python, whose integers have no bound.

A part's sum cannot overflow, for any number of rows the store can hold: a SQLite database
has at most 4294967294 pages of at most 65536 bytes, under 2**48 bytes, and every row takes
at least one of them, so fewer than 2**48 rows are summed; every part lies within
+-2**PART_BITS = +-2**15, so every part's sum stays within 2**63. `exact_rows` runs a query
plainly (one SUM a column: what nearly every ledger needs) and, only when SQLite says a sum
overflowed, again in parts.

    rows = exact_rows(conn, lambda sums: select(e.customer, *sums.sum(e.cost, COST_BOUND))
                                          .group_by(e.customer))

A sum over a subquery's sums (per task, then per type) names its inner sum (`inner`) and
sums it again (`outer`): in parts, each part is summed again, and the outer part sums are
sums of the same parts over the same rows, so the bound above holds for them too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Integer, func, literal
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import Select
from sqlalchemy.sql.expression import ColumnElement

from payoff.core.money import MAX_STEP_COST_NANOUSD
from payoff.core.tokens import MAX_TOKENS

ROW_BITS = 48
"""Rows of a SQLite database, at most 2**48 (see the module docstring)."""
PART_BITS = 63 - ROW_BITS
"""Bits of one part, so that 2**ROW_BITS parts sum within 64 bits."""
PART_MASK = (1 << PART_BITS) - 1

COST_BOUND = MAX_STEP_COST_NANOUSD
"""Any cost column of one event row (nano-USD)."""
TOKENS_BOUND = 2 * MAX_TOKENS
"""Any token count of one event row, or the sum of its input and output (disjoint classes of
one row add up to no more than that)."""

_PART_LABEL = re.compile(r"_s(\d+)_(\d+)")


def part_count(bound: int) -> int:
    """How many parts a value within +-bound is cut into."""
    return max(1, -(-bound.bit_length() // PART_BITS))


def shifted_right(expression: ColumnElement[Any], bits: int) -> ColumnElement[Any]:
    """`expression >> bits`, the count a 32-bit integer: PostgreSQL has `bigint >> integer`,
    not `bigint >> bigint`."""
    return expression.op(">>")(literal(bits, Integer))


def parts(expression: ColumnElement[Any], bound: int) -> list[ColumnElement[Any]]:
    """`expression` cut into parts: the low ones masked, the top one shifted (it keeps the
    sign), so that the value is sum(part_i << PART_BITS * i)."""
    count = part_count(bound)
    cut: list[ColumnElement[Any]] = []
    for index in range(count):
        shifted = shifted_right(expression, PART_BITS * index) if index else expression
        cut.append(shifted if index == count - 1 else shifted.op("&")(PART_MASK))
    return cut


class Sums:
    """Builds the SUM columns of one query, plainly or in parts (see the module docstring)."""

    def __init__(self, *, split: bool) -> None:
        self.split = split
        self._sums = 0
        self._inner_parts: dict[str, int] = {}

    def sum(
        self, expression: ColumnElement[Any], bound: int, *, default: int | None = 0
    ) -> list[ColumnElement[Any]]:
        """The result columns of SUM(expression), every row's value within +-bound; NULL
        becomes `default` (SUM over no value is NULL)."""
        if not self.split:
            return [self._label(_defaulted(func.sum(expression), default), 0)]
        return [
            self._label(_defaulted(func.sum(part), default), index)
            for index, part in enumerate(parts(expression, bound))
        ]

    def inner(self, expression: ColumnElement[Any], bound: int, name: str) -> list[Any]:
        """SUM(expression) inside a subquery, as columns named after `name` for `outer`."""
        if not self.split:
            return [func.sum(expression).label(name)]
        cut = parts(expression, bound)
        self._inner_parts[name] = len(cut)
        return [func.sum(part).label(f"{name}_{i}") for i, part in enumerate(cut)]

    def outer(
        self, subquery: Any, name: str, *, summed: bool, default: int | None = 0
    ) -> list[ColumnElement[Any]]:
        """The result columns of an `inner` sum of `subquery`: summed again, or as it is."""
        names = [name]
        if self.split:
            names = [f"{name}_{i}" for i in range(self._inner_parts[name])]
        columns = [func.sum(subquery.c[n]) if summed else subquery.c[n] for n in names]
        if not self.split:
            return [_defaulted(columns[0], default)]
        return [self._label(_defaulted(c, default), i) for i, c in enumerate(columns)]

    def _label(self, column: ColumnElement[Any], part: int) -> ColumnElement[Any]:
        if part == 0:
            self._sums += 1
        return column.label(f"_s{self._sums}_{part}")

    def folded(self, keys: Sequence[str], rows: Any) -> list[tuple[Any, ...]]:
        """Result rows with each sum's parts put back together, in the place of its first."""
        if not self.split:
            return [tuple(row) for row in rows]
        groups: list[list[int]] = []
        for index, key in enumerate(keys):
            match = _PART_LABEL.fullmatch(key)
            if match is None or match.group(2) == "0":
                groups.append([index])
            else:
                groups[-1].append(index)
        return [tuple(_joined(row, group) for group in groups) for row in rows]


def _joined(row: Sequence[Any], indexes: list[int]) -> Any:
    if len(indexes) == 1:
        return row[indexes[0]]
    values = [row[i] for i in indexes]
    if all(value is None for value in values):
        return None
    return joined(values)


def joined(values: Sequence[Any]) -> int:
    """A value put back together from its parts' sums (None counts as 0)."""
    total, shift = 0, 0
    for value in values:
        if value:
            total += int(value) << shift
        shift += PART_BITS
    return total


def _defaulted(column: ColumnElement[Any], default: int | None) -> ColumnElement[Any]:
    return column if default is None else func.coalesce(column, default)


def overflowed(error: OperationalError) -> bool:
    """Whether SQLite refused a plain sum past 64 bits."""
    return "integer overflow" in str(error.orig)


IN_PARTS_ALWAYS = False
"""Sum in parts from the start (the contract tests run every aggregate both ways)."""

T = TypeVar("T")


def plainly_or_in_parts(conn: Connection, plainly: Callable[[], T], in_parts: Callable[[], T]) -> T:
    """`plainly()`, or `in_parts()` when SQLite says one of its plain sums overflowed."""
    if not IN_PARTS_ALWAYS:
        try:
            return plainly()
        except OperationalError as error:
            if not overflowed(error):
                raise
        conn.rollback()  # the failed statement leaves its read transaction open
    return in_parts()


def exact_rows(conn: Connection, build: Callable[[Sums], Select[Any]]) -> list[tuple[Any, ...]]:
    """The rows of the query `build` makes, plainly, or in parts when a plain sum overflows."""

    def plainly() -> list[tuple[Any, ...]]:
        return [tuple(row) for row in conn.execute(build(Sums(split=False)))]

    def in_parts() -> list[tuple[Any, ...]]:
        sums = Sums(split=True)
        result = conn.execute(build(sums))
        return sums.folded(list(result.keys()), result)

    return plainly_or_in_parts(conn, plainly, in_parts)
