"""Daily rollups of usage: what rating, reports and the open period read instead of events.

    ingest (one write transaction)               re-pricing (one transaction per batch)
      events += the accepted rows                  superseded_costs += the costs replaced
      rollups += their sums, known_day = the       rollups -= the steps at their old cost
        day each was received (a grouped           events.cost_* = the new costs
        write's at its commit)                     rollups += the steps at their new cost,
      rollup_days[each day]: first seq, last       known_day = the day of the re-pricing
        stamp

A rollup row sums the steps of one key (customer, the day the step occurred, task type (or
task), provider, model, batch, visible, cost source) as they became known on `known_day`:
how many, how many unpriced, each disjoint token part, the cost and the visible cost. Two
rollups keep the same sums: `usage_rollups` by task type, for rating and the open period;
`task_usage_rollups` by task, for reasoning budgets (hidden tokens per task) and reports.

As of a time. Every reader asks as of a time A, and gets what the events said then:

- nothing received nor re-priced after A (an invoice run as of now): every row;
- otherwise the rows known before A's day, plus that day up to A, read from the events: the
  steps received from the day's start to A, at their cost as of A; and the steps received
  earlier whose cost was replaced since the day began, at their cost as of A less their
  cost as of the day's start (`store.as_of_costs`). `rollup_days` says where the
  day's steps begin and the index on `superseded_costs.until_us` finds the re-priced ones:
  at most one day of events is read.

Exact. Each sum is kept in parts (`store.exact_sums`): the value is sum(part_i <<
PART_BITS * i), each part a 64-bit integer, and whatever adds to a part adds less than
2**PART_BITS for each row it wrote: an event, or a superseded cost (counted twice: a
re-pricing takes the old cost out and puts the new one in). A value is cut into parts per
row, or per write transaction once its rows are summed in chunks (`_chunked_parts`). Those
rows number fewer than 2**ROW_BITS even counted twice (a superseded cost takes more than
two bytes of the file), so no stored part, and no sum of stored parts a reader asks for,
passes 64 bits. Readers put the parts back together in Python. (PostgreSQL holds no more:
2**48 event rows would fill petabytes; its SUM of a BIGINT is a NUMERIC besides, which
cannot overflow, cast back to BIGINT where a part is cut from a sum known to fit.)

What a crash can lose: nothing the events keep. The rollups change in the transaction
that writes the events or re-prices them, and roll back with it.

Backends: every statement is SQLAlchemy Core, and the upserts are INSERT ... ON CONFLICT DO
UPDATE SET n = n + excluded.n, which SQLite and PostgreSQL share (`_insert` picks the
dialect's). On SQLite one writer at a time: an ingest's events are those above the highest
`seq` before it (`last_event_seq`). On PostgreSQL batches write side by side, and other
batches' events commit above that seq while one runs, so each batch keeps the events it
accepted in a temporary table of its own and rolls those up (`add_received`'s `source`).
Either way the rollups come last in the write transaction, rows in key order (`_adding`):
two batches adding to one day's rows lock them in the same order, never each waiting for
the other, and hold them only until their commit. Re-pricing runs alone on both. A reader
asks what was received and re-priced after its time, then reads: it does both in one
snapshot (`reading`).

`recomputed` derives the rows from the events and the superseded costs alone: the
migration that created the rollups filled them with it, and `payoff verify` compares it
with them (`mismatches`).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    BindParameter,
    Connection,
    Engine,
    FromClause,
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    case,
    cast,
    func,
    select,
    true,
    union_all,
)
from sqlalchemy.sql import visitors
from sqlalchemy.sql.expression import ColumnElement

from payoff.core.periods import US_PER_DAY, iso_from_us
from payoff.core.token_classes import PART_COLUMNS
from payoff.store import schema as s
from payoff.store.as_of_costs import (
    CURRENT,
    CostColumns,
    costs_as_of,
    current_costs,
    replaced_since,
)
from payoff.store.exact_sums import (
    PART_BITS,
    PART_MASK,
    joined,
    part_count,
    parts,
    shifted_right,
)
from payoff.store.token_columns import part_column

NO_KEY = ""
"""A key the step has not (no task, no provider, unpriced): '' in a rollup, None to readers."""
MISMATCHES_SHOWN = 20


@dataclass(frozen=True)
class Rollup:
    table: Table
    own_key: str
    """`task_type` or `task`: the key one rollup keeps and the other does not."""

    @property
    def keys(self) -> tuple[str, ...]:
        """Its key columns but `known_day`, in the table's order."""
        return tuple(c.name for c in self.table.c if c.name in (*s.ROLLUP_KEYS, self.own_key))


USAGE = Rollup(s.usage_rollups, "task_type")
TASK_USAGE = Rollup(s.task_usage_rollups, "task")
ROLLUPS = (USAGE, TASK_USAGE)
SUM_COLUMNS = tuple(column for columns in s.ROLLUP_PART_COLUMNS.values() for column in columns)
VALUE_COLUMNS = (*s.ROLLUP_COUNTS, *SUM_COLUMNS)


def _event_values(costs: CostColumns, source: Table) -> dict[str, ColumnElement[Any]]:
    """Each summed value of one event row, by its name in `schema.ROLLUP_SUMS`."""
    values = {part: part_column(source, part) for part in PART_COLUMNS}
    values["cost"] = func.coalesce(costs.cost, 0)
    values["cost_visible"] = func.coalesce(costs.cost_visible, 0)
    return values


def _event_keys(rollup: Rollup, costs: CostColumns, source: Table) -> list[ColumnElement[Any]]:
    e = source.c
    by_name: dict[str, ColumnElement[Any]] = {
        "customer": e.customer,
        "day": e.occurred_at_us // US_PER_DAY,
        "provider": func.coalesce(e.provider, NO_KEY),
        "model": func.coalesce(e.model, NO_KEY),
        "batch": e.batch,
        "visible": e.visible,
        "cost_source": func.coalesce(costs.source, NO_KEY),
        rollup.own_key: func.coalesce(e[rollup.own_key], NO_KEY),
    }
    return [by_name[name] for name in rollup.keys]


def contributions(
    rollup: Rollup,
    costs: CostColumns,
    known_day: ColumnElement[Any],
    where: ColumnElement[bool],
    *,
    sign: int = 1,
    joined_to: FromClause | None = None,
    few_rows: bool = False,
    source: Table = s.events,
) -> Select[Any]:
    """Rollup rows of the events `where` selects, at `costs`, known on `known_day`,
    counted `sign` times (-1 takes them out); read from `source`, the events or a table
    shaped like them.

    `few_rows`: the events are those of one write transaction (fewer than
    MAX_TRANSACTION_ROWS), so each value is summed in chunks (`_chunked_parts`), cut into
    parts once a group rather than once a row.
    """
    keys = _event_keys(rollup, costs, source)
    unpriced = func.sum(case((costs.cost.is_(None), 1), else_=0))
    values: list[ColumnElement[Any]] = [func.count() * sign, unpriced * sign]
    for name, value in _event_values(costs, source).items():
        bound = s.ROLLUP_SUMS[name]
        if few_rows:
            values += [part * sign for part in _chunked_parts(value, bound)]
        else:
            values += [func.sum(part) * sign for part in parts(value, bound)]
    names = (*rollup.keys, "known_day", *VALUE_COLUMNS)
    columns = [*keys, known_day, *values]
    # A known day given as a parameter is one value for every row: not a grouping key.
    grouping = keys if isinstance(known_day, BindParameter) else [*keys, known_day]
    return (
        select(*(column.label(name) for column, name in zip(columns, names, strict=True)))
        .select_from(source if joined_to is None else joined_to)
        .where(where)
        .group_by(*grouping)
    )


CHUNK_BITS = 2 * PART_BITS
TRANSACTION_ROW_BITS = 27
MAX_TRANSACTION_ROWS = 2**TRANSACTION_ROW_BITS
"""More rows than a write transaction ever holds (its batches are in memory): a chunk's
sum over them stays within 2**(CHUNK_BITS + 27) < 2**63."""


def _chunked_parts(value: ColumnElement[Any], bound: int) -> list[ColumnElement[Any]]:
    """The SUM of `value` over a group of at most MAX_TRANSACTION_ROWS rows, as the parts a
    rollup keeps (weights 2**(PART_BITS * i)), each row cut into chunks of two parts.

    A chunk's sum S splits into its low part (S & PART_MASK) and the rest (S >> PART_BITS),
    which may pass PART_BITS: a part need not be canonical, only bounded. A value small
    enough (a token count) is summed whole and cut the same way. Per row it adds
    less than 2**PART_BITS to each part but the top one, as `parts` would, so the bound of
    the module docstring holds.
    """
    count = part_count(bound)
    if bound.bit_length() + TRANSACTION_ROW_BITS < 63:
        return parts(_bigint_sum(value), bound)  # a token count: summed whole, then cut
    chunks = -(-count // 2)
    found: list[ColumnElement[Any]] = []
    for index in range(chunks):
        shifted = shifted_right(value, CHUNK_BITS * index) if index else value
        top = index == chunks - 1
        chunk_sum = _bigint_sum(shifted if top else shifted.op("&")((1 << CHUNK_BITS) - 1))
        if len(found) + 1 == count:
            found.append(chunk_sum)
        else:
            found += [chunk_sum.op("&")(PART_MASK), shifted_right(chunk_sum, PART_BITS)]
    assert len(found) == count
    return found


def _bigint_sum(value: ColumnElement[Any]) -> ColumnElement[Any]:
    """SUM(value) as a 64-bit integer, for a sum known to fit one: PostgreSQL's SUM of a
    BIGINT is a NUMERIC, which has no bitwise operators."""
    return cast(func.sum(value), BigInteger)


def _insert(dialect: str) -> Any:
    """The dialect's INSERT, the one with ON CONFLICT DO UPDATE (SQLite and PostgreSQL)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def _adding(dialect: str, rollup: Rollup, rows: Select[Any]) -> Any:
    """INSERT `rows` into the rollup, summed into the rows of keys already stored.

    The rows go in key order: two transactions adding to the same keys at once (writers
    side by side on PostgreSQL) take their row locks in the same order, so neither waits
    for a key the other holds while holding one it wants.
    """
    table = rollup.table
    key = [*rollup.keys, "known_day"]
    ordered = rows.order_by(*(rows.selected_columns[name] for name in key))
    statement = _insert(dialect)(table).from_select([c.name for c in table.c], ordered)
    return _constants_inline(
        statement.on_conflict_do_update(
            index_elements=key,
            set_={name: table.c[name] + statement.excluded[name] for name in VALUE_COLUMNS},
        )
    )


def _constants_inline(statement: Any) -> Any:
    """The statement with its constants (the day's length, masks, shifts, '' for no key)
    written into its text, its named parameters left as they are.

    A parameter is a value SQLite cannot compare with another: two `?`s are two unknowns.
    As written, `occurred_at_us / 86400000000` in the ORDER BY is the GROUP BY's, so the
    groups come out sorted (one sort, not two), and a sum asked for twice, once for each
    part cut from it (`sum(cost & mask)`), is computed once: a fifth of a rollup's time
    on SQLite, measured with EXPLAIN QUERY PLAN and bench/where.py.
    """

    def inline(bind: BindParameter[Any]) -> None:
        if bind.value is not None and bind.callable is None:
            bind.literal_execute = True

    return visitors.cloned_traverse(statement, {}, {"bindparam": inline})


# -- kept up to date ------------------------------------------------------------------------


def last_event_seq(conn: Connection) -> int:
    """The highest event `seq`: an ingest's new rows are those above it (one writer)."""
    return int(conn.execute(select(func.max(s.events.c.seq))).scalar_one_or_none() or 0)


KNOWN_DAY = bindparam("known_day", type_=Integer)


AFTER_SEQ = bindparam("after_seq", type_=BigInteger)


@functools.cache
def _received(dialect: str, rollup: Rollup, source: Table) -> Any:
    e = source.c
    known_day = e.received_at_us // US_PER_DAY
    costs = current_costs(source)
    new = e.seq > AFTER_SEQ
    rows = contributions(rollup, costs, known_day, new, few_rows=True, source=source)
    return _adding(dialect, rollup, rows)


@functools.cache
def _marking(dialect: str, source: Table) -> Any:
    """Mark each day of receipt of the new events: the lowest seq, the latest stamp."""
    e = source.c
    day = e.received_at_us // US_PER_DAY
    marks = (
        select(day, func.min(e.seq), func.max(e.received_at_us)).where(e.seq > AFTER_SEQ)
    ).group_by(day)
    statement = _insert(dialect)(s.rollup_days).from_select(
        ["day", "first_seq", "last_received_us"], marks.order_by(day)
    )
    return _widening(statement)


@functools.cache
def _marking_one(dialect: str) -> Any:
    """Mark one day of receipt: its events' lowest seq and latest stamp, as parameters."""
    names = ("day", "first_seq", "last_received_us")
    statement = _insert(dialect)(s.rollup_days).values(
        {name: bindparam(name, type_=BigInteger) for name in names}
    )
    return _widening(statement)


def _widening(statement: Any) -> Any:
    """An upsert of rollup_days that keeps a day's lowest first seq and latest stamp."""
    d = s.rollup_days.c
    new = statement.excluded
    return statement.on_conflict_do_update(
        index_elements=["day"],
        set_={
            "first_seq": case((new.first_seq < d.first_seq, new.first_seq), else_=d.first_seq),
            "last_received_us": case(
                (new.last_received_us > d.last_received_us, new.last_received_us),
                else_=d.last_received_us,
            ),
        },
    )


def add_received(conn: Connection, after_seq: int, source: Table = s.events) -> None:
    """Add the events this transaction wrote, each known on the day it was received: one
    batch, or all the batches of a grouped write at its commit. They are the rows of
    `source` whose `seq` is above `after_seq`.

    With one writer (SQLite), `source` is the events and `after_seq` the highest seq before
    the transaction. With writers side by side (PostgreSQL), other transactions' events
    commit above that seq while this one runs, so `source` is a table of this transaction's
    own new events (`postgres.ingest.NEW_EVENTS`), read whole (`after_seq` 0).

    The statements are built once: building one costs more than running it on a batch.
    Both rollups, then the days, each in key order (`_adding`): the order of the locks.
    """
    dialect = conn.dialect.name
    for rollup in ROLLUPS:
        conn.execute(_received(dialect, rollup, source), {"after_seq": after_seq})
    conn.execute(_marking(dialect, source), {"after_seq": after_seq})


@functools.cache
def _staged(dialect: str, rollup: Rollup, source: Table) -> Any:
    costs = current_costs(source)
    rows = contributions(rollup, costs, KNOWN_DAY, true(), few_rows=True, source=source)
    return _adding(dialect, rollup, rows)


def add_staged(conn: Connection, source: Table, first_seq: int, received_at_us: int) -> None:
    """Add one batch's events as they were staged: every row of `source` (a table with the
    events' columns but their seq and stamp) was accepted, stamped `received_at_us`, and
    given the seqs from `first_seq` on. The same sums as `add_received`, in the same order,
    without copying the accepted rows into a table of their own first (PostgreSQL)."""
    dialect = conn.dialect.name
    day = received_at_us // US_PER_DAY
    for rollup in ROLLUPS:
        conn.execute(_staged(dialect, rollup, source), {"known_day": day})
    mark = {"day": day, "first_seq": first_seq, "last_received_us": received_at_us}
    conn.execute(_marking_one(dialect), mark)


def last_superseded_seq(conn: Connection) -> int:
    return int(conn.execute(select(func.max(s.superseded_costs.c.seq))).scalar_one_or_none() or 0)


@functools.cache
def _repriced(dialect: str, rollup: Rollup, sign: int) -> Any:
    h, e = s.superseded_costs.c, s.events.c
    revised = select(h.event_seq).where(h.seq > bindparam("after_superseded"))
    seqs = e.seq.between(bindparam("lowest_seq"), bindparam("highest_seq"))
    where = and_(seqs, e.seq.in_(revised))
    rows = contributions(rollup, CURRENT, KNOWN_DAY, where, sign=sign, few_rows=True)
    return _adding(dialect, rollup, rows)


def add_repriced(
    conn: Connection,
    after_superseded: int,
    seqs: tuple[int, int],
    now_us: int,
    *,
    sign: int,
) -> None:
    """Take out (`sign` -1, before the new costs are written) or add back (+1, after) the
    steps whose cost this transaction superseded (`superseded_costs.seq` above
    `after_superseded`), at their cost of the moment, known on the day of `now_us`.

    `seqs`, the lowest and highest seq of those steps, lets the events be read from their
    index over that range: joined to the costs alone, PostgreSQL's planner scans every
    partition of the events whole, for each batch of a re-pricing.
    """
    params = {
        "after_superseded": after_superseded,
        "lowest_seq": seqs[0],
        "highest_seq": seqs[1],
        "known_day": now_us // US_PER_DAY,
    }
    for rollup in ROLLUPS:
        conn.execute(_repriced(conn.dialect.name, rollup, sign), params)


# -- derived from the events alone ------------------------------------------------------


def recomputed(rollup: Rollup) -> Select[Any]:
    """The rollup's rows from the events and superseded costs alone.

    Each cost a step held counts from the time it took effect (its receipt, or the
    re-pricing that set it) and is taken out on the day it was replaced.
    """
    e, h = s.events.c, s.superseded_costs.c
    current = contributions(
        rollup,
        CURRENT,
        func.coalesce(e.costed_at_us, e.received_at_us) // US_PER_DAY,
        true(),
    )
    held = select(
        h.event_seq,
        h.cost_nanousd,
        h.cost_visible_nanousd,
        h.cost_source,
        h.until_us,
        func.lag(h.until_us).over(partition_by=h.event_seq, order_by=h.until_us).label("from_us"),
    ).subquery()
    old = CostColumns(held.c.cost_nanousd, held.c.cost_visible_nanousd, held.c.cost_source)
    steps = s.events.join(held, held.c.event_seq == e.seq)
    began = contributions(
        rollup,
        old,
        func.coalesce(held.c.from_us, e.received_at_us) // US_PER_DAY,
        true(),
        joined_to=steps,
    )
    ended = contributions(
        rollup, old, held.c.until_us // US_PER_DAY, true(), sign=-1, joined_to=steps
    )
    every = union_all(current, began, ended).subquery()
    keys = [every.c[name] for name in (*rollup.keys, "known_day")]
    return select(*keys, *(func.sum(every.c[name]).label(name) for name in VALUE_COLUMNS)).group_by(
        *keys
    )


def fill(conn: Connection) -> None:
    """Fill empty rollups from the events (the migration that creates them)."""
    for rollup in ROLLUPS:
        table = rollup.table
        conn.execute(table.insert().from_select([c.name for c in table.c], recomputed(rollup)))
    e = s.events.c
    day = e.received_at_us // US_PER_DAY
    conn.execute(
        s.rollup_days.insert().from_select(
            ["day", "first_seq", "last_received_us"],
            select(day, func.min(e.seq), func.max(e.received_at_us)).group_by(day),
        )
    )


def _folded(
    rows: Iterable[Sequence[Any]], key_length: int
) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """{key: (counts..., each sum put back together)}, rows of all zeros left out."""
    found: dict[tuple[Any, ...], tuple[int, ...]] = {}
    for row in rows:
        values = tuple(int(v) for v in row[key_length : key_length + len(s.ROLLUP_COUNTS)])
        at = key_length + len(s.ROLLUP_COUNTS)
        for columns in s.ROLLUP_PART_COLUMNS.values():
            values += (joined(row[at : at + len(columns)]),)
            at += len(columns)
        if any(values):
            key = tuple(int(v) if isinstance(v, bool) else v for v in row[:key_length])
            found[key] = values
    return found


def mismatches(conn: Connection) -> list[str]:
    """Where the stored rollups differ from the events' (`recomputed`), in words; at most
    MISMATCHES_SHOWN, then how many more."""
    found: list[str] = []
    names = (*s.ROLLUP_COUNTS, *s.ROLLUP_PART_COLUMNS)
    for rollup in ROLLUPS:
        key_length = len(rollup.keys) + 1
        stored_rows = conn.execute(select(rollup.table)).all()
        stored = _folded(stored_rows, key_length)
        derived = _folded(conn.execute(recomputed(rollup)).all(), key_length)
        for key in sorted(stored.keys() | derived.keys(), key=repr):
            have, want = stored.get(key), derived.get(key)
            if have == want:
                continue
            *named, known_day = key
            labels = ", ".join(
                f"{name}={_shown(name, value)}"
                for name, value in zip(rollup.keys, named, strict=True)
            )
            have_values = have or (0,) * len(names)
            want_values = want or (0,) * len(names)
            differing = [
                f"{name} {a} (events say {b})"
                for name, a, b in zip(names, have_values, want_values, strict=True)
                if a != b
            ]
            found.append(
                f"{rollup.table.name}: {', '.join(differing)} for {labels}; known "
                f"{_shown('day', known_day)}"
            )
    found += _day_mismatches(conn)
    if len(found) > MISMATCHES_SHOWN:
        return [*found[:MISMATCHES_SHOWN], f"... and {len(found) - MISMATCHES_SHOWN} more"]
    return found


def _shown(name: str, value: Any) -> str:
    """A key as a mismatch names it: days as dates, the rest as Python writes them."""
    if name == "day":
        return iso_from_us(value * US_PER_DAY)[:10]
    return repr(value)


def _day_mismatches(conn: Connection) -> list[str]:
    """Days of receipt whose mark would let an as-of read miss a step."""
    e, d = s.events.c, s.rollup_days.c
    day = (e.received_at_us // US_PER_DAY).label("day")
    actual = (
        select(day, func.min(e.seq).label("first"), func.max(e.received_at_us).label("last"))
        .group_by(day)
        .subquery()
    )
    query = select(actual.c.day, actual.c.first, actual.c.last, d.first_seq, d.last_received_us)
    query = query.select_from(actual.outerjoin(s.rollup_days, d.day == actual.c.day))
    found = []
    for received_day, first, last, marked_first, marked_last in conn.execute(query):
        if marked_first is None or marked_first > first or marked_last < last:
            found.append(
                f"rollup_days: first_seq {marked_first}, last_received_us {marked_last} (events "
                f"say at most {first}, at least {last}) for steps received "
                f"{_shown('day', received_day)}"
            )
    return found


# -- read as of a time ----------------------------------------------------------------------


def _settled(conn: Connection, as_of_us: int) -> bool:
    """Nothing was received nor re-priced after `as_of_us`: every stored row holds then."""
    last = conn.execute(select(func.max(s.rollup_days.c.last_received_us))).scalar_one_or_none()
    return (last is None or last <= as_of_us) and not replaced_since(conn, as_of_us)


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements all read one state of the ledger, for `known_rows` and
    the query of its rows: it asks what was received and re-priced after the time, then
    reads accordingly, and a write committed between the two must not reach the second.

    SQLite's reads share the transaction SQLAlchemy begins (one WAL snapshot); PostgreSQL
    takes a snapshot per statement unless the transaction is REPEATABLE READ.
    """
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        yield conn


def known_rows(
    conn: Connection, rollup: Rollup, as_of_us: int
) -> tuple[FromClause, dict[str, int]]:
    """The rollup's rows as of `as_of_us` (the module docstring says how), and the
    parameters to run a query of them with; `conn` reads one state throughout (`reading`)."""
    if _settled(conn, as_of_us):
        return rollup.table, {}
    d = s.rollup_days.c
    day = as_of_us // US_PER_DAY
    day_start_us = day * US_PER_DAY
    first = conn.execute(select(func.min(d.first_seq)).where(d.day >= day)).scalar_one_or_none()
    rows = _within_day(
        rollup, replaced_since(conn, as_of_us), replaced_since(conn, day_start_us - 1)
    )
    params = {
        "known_day": day,
        "day_start_us": day_start_us,
        "as_of_us": as_of_us,
        "then_us": day_start_us - 1,
        # No step received from that day on: a seq no step has.
        "first_seq": -1 if first is None else first,
    }
    return rows, params


@functools.cache
def _within_day(rollup: Rollup, now_as_of: bool, then_as_of: bool) -> FromClause:
    """The rows known before a day, and the day's part up to a time read from the events,
    with parameters for both (`known_rows`); a cost read as it was only where a re-pricing
    came after the time (`now_as_of`) or after the day began (`then_as_of`)."""
    table = rollup.table
    e, h = s.events.c, s.superseded_costs.c
    day_start, as_of = (
        bindparam("day_start_us", type_=BigInteger),
        bindparam("as_of_us", type_=BigInteger),
    )
    now = costs_as_of(as_of) if now_as_of else CURRENT
    then = costs_as_of(bindparam("then_us", type_=BigInteger)) if then_as_of else CURRENT
    received = and_(
        e.seq >= bindparam("first_seq"), e.received_at_us >= day_start, e.received_at_us <= as_of
    )
    repriced = select(h.event_seq).where(h.until_us >= day_start, h.until_us <= as_of)
    changed = and_(e.received_at_us < day_start, e.seq.in_(repriced))
    return union_all(
        select(table).where(table.c.known_day < KNOWN_DAY),
        contributions(rollup, now, KNOWN_DAY, received),
        contributions(rollup, now, KNOWN_DAY, changed),
        contributions(rollup, then, KNOWN_DAY, changed, sign=-1),
    ).subquery()


def days_of(start_us: int, end_us: int) -> tuple[int, int]:
    """The first day of a window and the day after its last, in days since the epoch; a
    window the rollups answer starts and ends at midnight UTC (every period does)."""
    if start_us % US_PER_DAY or end_us % US_PER_DAY:
        raise ValueError(f"window [{start_us}, {end_us}) does not start and end at midnight UTC")
    return start_us // US_PER_DAY, end_us // US_PER_DAY


def summed(source: FromClause) -> list[ColumnElement[Any]]:
    """The SUM of every value column of `source`, in VALUE_COLUMNS order (for `fold`)."""
    return [func.sum(source.c[name]) for name in VALUE_COLUMNS]


def fold(row: Sequence[Any], at: int) -> dict[str, int]:
    """The values of a row summed with `summed` from index `at`: the counts, and each sum
    of `schema.ROLLUP_SUMS` put back together."""
    values = {name: int(row[at + i] or 0) for i, name in enumerate(s.ROLLUP_COUNTS)}
    at += len(s.ROLLUP_COUNTS)
    for name, columns in s.ROLLUP_PART_COLUMNS.items():
        values[name] = joined(row[at : at + len(columns)])
        at += len(columns)
    return values


def key_value(value: Any) -> Any:
    """A rollup key as the events have it: '' is None."""
    return None if value == NO_KEY else value
