"""Copying a ledger into another, table by table: SQLite to PostgreSQL (or back).

    source ──rows in key order, CHUNK_ROWS at a time──▶ target (one transaction a chunk)
                                                          └─ ON CONFLICT DO NOTHING
    then: each table's count and digest, on both sides, compared

Every row keeps its values, seq numbers included (a superseded cost names its event's seq),
and the target's sequences are moved past them. A copy cut short (killed, a lost connection)
leaves whole chunks; run again, it resumes from the largest key the target holds and skips
what is there. It is done when every table has the same count and the same digest (sha256 of
its rows in key order) on both sides: a target that held other rows fails that check.

The target should be idle while the copy runs (no server writing to it): the copy moves a
ledger, it does not merge two.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, func, select, text
from sqlalchemy.dialects import postgresql, sqlite

from payoff.store import schema as s
from payoff.store.sql import SqlStore

CHUNK_ROWS = 5000
"""Rows a target transaction takes: what a cut-short copy may have to do again."""


@dataclass(frozen=True)
class TableCheck:
    """One table after a copy: rows and digest on each side."""

    table: str
    copied: int
    """Rows this run inserted (fewer than `rows` when it resumed an earlier copy)."""
    rows: int
    target_rows: int
    digest: str
    target_digest: str

    @property
    def same(self) -> bool:
        return self.rows == self.target_rows and self.digest == self.target_digest


Progress = Callable[[str, int], None]
"""`progress(table, rows_read_so_far)`, after each chunk is committed."""


def copy_ledger(
    source: SqlStore, target: SqlStore, progress: Progress | None = None
) -> list[TableCheck]:
    """Copy every table of `source` into `target` and check both agree, table by table."""
    copied = {table.name: _copy_table(source, target, table, progress) for table in _tables()}
    _move_sequences(target)
    checks = []
    for table in _tables():
        rows, digest = table_digest(source, table)
        target_rows, target_digest = table_digest(target, table)
        checks.append(
            TableCheck(table.name, copied[table.name], rows, target_rows, digest, target_digest)
        )
    return checks


def _tables() -> list[Table]:
    return list(s.metadata.sorted_tables)


def _key(table: Table) -> list[Any]:
    return list(table.primary_key.columns)


def _copy_table(source: SqlStore, target: SqlStore, table: Table, progress: Progress | None) -> int:
    key = _key(table)
    with target.engine.connect() as conn:
        resume = conn.execute(select(func.max(key[0]))).scalar()
        before = conn.execute(select(func.count()).select_from(table)).scalar_one()
    query = select(table).order_by(*key)
    if resume is not None:
        query = query.where(key[0] >= resume)  # the last chunk may be partly there
    read = 0
    with source.engine.connect() as reader:
        result = reader.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
        for chunk in result.partitions(CHUNK_ROWS):
            rows = [dict(row._mapping) for row in chunk]
            with target.engine.connect() as conn, conn.begin():
                _insert(target, conn, table, rows)
            read += len(rows)
            if progress is not None:
                progress(table.name, read)
    with target.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one()) - before


def _insert(target: SqlStore, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert the rows the target lacks (what an earlier, cut-short copy left is skipped)."""
    if conn.dialect.name != "postgresql":
        conn.execute(sqlite.insert(table).on_conflict_do_nothing(), rows)
        return
    conflict_key = [column.name for column in _key(table)]
    if table is s.events:
        from payoff.store.postgres.store import PostgresStore

        assert isinstance(target, PostgresStore)
        target.partitions.ensure(row["occurred_at_us"] for row in rows)
        conn.exec_driver_sql(
            "INSERT INTO event_ids (id) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING",
            ([row["id"] for row in rows],),
        )
        conflict_key = ["seq", "occurred_at_us"]
    upsert = postgresql.insert(table).on_conflict_do_nothing(index_elements=conflict_key)
    conn.execute(upsert, rows)


def _move_sequences(target: SqlStore) -> None:
    """On PostgreSQL, start each sequence after the largest seq copied."""
    with target.engine.connect() as conn, conn.begin():
        if conn.dialect.name != "postgresql":
            return
        for table in _tables():
            key = _key(table)
            if len(key) != 1 or key[0].name != "seq":
                continue
            sequence = conn.execute(
                text("SELECT pg_get_serial_sequence(:table, 'seq')"), {"table": table.name}
            ).scalar()
            largest = conn.execute(select(func.max(key[0]))).scalar()
            if sequence is not None and largest is not None:
                conn.execute(
                    text("SELECT setval(:sequence, :value)"),
                    {"sequence": sequence, "value": largest},
                )


def table_digest(store: SqlStore, table: Table) -> tuple[int, str]:
    """(rows, sha256 of the rows in key order): the same on any backend for the same rows."""
    digest = hashlib.sha256()
    rows = 0
    for row in _rows(store, table):
        digest.update(repr(tuple(row)).encode())
        digest.update(b"\n")
        rows += 1
    return rows, "sha256:" + digest.hexdigest()


def _rows(store: SqlStore, table: Table) -> Iterator[Any]:
    with store.engine.connect() as conn:
        query = select(table).order_by(*_key(table))
        result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(query)
        yield from result
