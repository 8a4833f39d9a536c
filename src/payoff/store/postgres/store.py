"""PostgresStore: SqlStore on a PostgreSQL server, with locks in place of SQLite's one writer."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from payoff.core.errors import LedgerBusy, StoreError
from payoff.store import rollups
from payoff.store.busy import BUSY_TIMEOUT_S
from payoff.store.postgres.engine import RETRYABLE, postgres_engine, shown_url, sqlstate
from payoff.store.postgres.ingest import NEW_EVENTS, STAGED, accepted_rows, copy_events
from payoff.store.postgres.locks import lock_ledger
from payoff.store.postgres.partitions import Partitions
from payoff.store.protocol import (
    EVENTS,
    Row,
    RowShape,
    WriteBatch,
    WriteResult,
    WriteStatus,
)
from payoff.store.sql import SqlStore, _compare, _finished

WRITE_ATTEMPTS = 5
"""A batch rolled back by a deadlock or a serialization failure runs again, at most so often
(the sorted lock order makes either rare; it is not impossible between unique indexes)."""


class _TaskTaken(Exception):  # a signal to run the batch again, never shown
    """Another batch created a task this one took for new (the batch runs again)."""


class PostgresStore(SqlStore):
    """A ledger in a PostgreSQL database, shared by any number of processes and hosts."""

    _placeholder = "%s"

    def __init__(self, url: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.url = url
        self.shown_url = shown_url(url)
        self.busy_timeout_s = busy_timeout_s
        super().__init__(postgres_engine(url, busy_timeout_s))
        self.partitions = Partitions(self.engine)

    # -- writing ---------------------------------------------------------------------------

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        """Every write but a batch of records: alone, as on SQLite (see `locks`)."""
        with self.engine.connect() as conn, conn.begin():
            lock_ledger(conn, shared=False)
            yield conn

    @contextmanager
    def grouped_writes(self, rows: int) -> Iterator[None]:
        """Each batch still commits on its own: a batch that loses a race to another writer
        runs again whole (`write`), which a transaction spanning batches could not. (Grouping
        pays on SQLite, where each commit rewrites the index pages its random ids touched.)"""
        yield

    def _events_mark(self, conn: Connection) -> int:
        return 0  # every row of NEW_EVENTS is this transaction's (`_roll_up_events`)

    def _roll_up_events(self, conn: Connection, after_seq: int) -> None:
        """Roll up the events this transaction accepted where `copy_events` left them: in
        the staging table when it accepted every staged row, else in NEW_EVENTS (the events
        above the highest seq before it may be other writers'); then empty that table for
        the connection's next transaction."""
        staged = accepted_rows(conn)
        if staged is not None:
            rollups.add_staged(conn, STAGED, staged.first_seq, staged.received_at_us)
            conn.exec_driver_sql(f"TRUNCATE {STAGED.name}")
        else:
            rollups.add_received(conn, after_seq, NEW_EVENTS)
            conn.exec_driver_sql(f"TRUNCATE {NEW_EVENTS.name}")

    @contextmanager
    def _batch_transaction(self, batch: WriteBatch) -> Iterator[Connection]:
        """A batch of records: beside other batches (see `_create_tasks` for their tasks)."""
        with self.engine.connect() as conn, conn.begin():
            # Verdicts change what an outcome is worth: they are written alone.
            lock_ledger(conn, shared=not batch.attestations)
            yield conn

    def _stored_tasks(self, conn: Connection, ids: Iterable[str]) -> dict[str, tuple[str, Any]]:
        """{task: (customer, type)} of the stored tasks among `ids`: one lookup, the ids
        sent as one array."""
        found = conn.exec_driver_sql(
            "SELECT id, customer, type FROM tasks WHERE id = ANY(%s::text[])",
            (sorted(set(ids)),),
        )
        return {task: (customer, kind) for task, customer, kind in found}

    def _insert_tasks(self, conn: Connection, rows: list[Row]) -> None:
        """Insert the new tasks in one statement, then check this batch owns them.

        Two batches may both find a task new and accept rows of it for two customers. Its
        unique key settles which one creates it: the second insert waits for the first
        batch to commit and then does nothing, so the task is not among those it returns.
        If that task's owner is not the one this batch gave it, the batch runs again whole
        (_TaskTaken), now finding the task stored with its owner: its rows of another
        customer are refused, as on SQLite. No lock per task is held, so a batch naming
        thousands of tasks needs no more of PostgreSQL's lock table than one.
        """
        columns = [list(column) for column in zip(*rows, strict=True)]
        ids, customers, types, _, _, created, started = columns
        inserted = set(
            conn.exec_driver_sql(
                "INSERT INTO tasks (id, customer, type, status, status_at_us, created_at_us,"
                " started_at_us) SELECT id, customer, type, 'open', NULL, created, started"
                " FROM unnest(%s::text[], %s::text[], %s::text[], %s::bigint[], %s::bigint[])"
                " AS new (id, customer, type, created, started)"
                " ON CONFLICT (id) DO NOTHING RETURNING id",
                (ids, customers, types, created, started),
            ).scalars()
        )
        owners = {row[0]: row[1] for row in rows if row[0] not in inserted}
        if owners:
            for task, (customer, _) in self._stored_tasks(conn, owners).items():
                if owners[task] != customer:
                    raise _TaskTaken(task)

    def write(
        self,
        batch: WriteBatch,
        clock: Callable[[], int],
        before_write: Callable[[WriteBatch], None] | None = None,
    ) -> WriteResult:
        time_at = EVENTS.column_index("occurred_at_us")
        self.partitions.ensure(row[time_at] for row in batch.events)
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                return self._write_once(batch, clock, before_write)
            except _TaskTaken as taken:
                if attempt == WRITE_ATTEMPTS:
                    raise LedgerBusy(
                        f"task `{taken}` was created by another writer during each of "
                        f"{WRITE_ATTEMPTS} attempts; nothing was written, try again"
                    ) from None
            except DBAPIError as exc:
                if sqlstate(exc) not in RETRYABLE or attempt == WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def _write_once(
        self,
        batch: WriteBatch,
        clock: Callable[[], int],
        before_write: Callable[[WriteBatch], None] | None,
    ) -> WriteResult:
        if before_write is not None:
            transaction = self._write_transaction()
        else:
            transaction = self._batch_transaction(batch)
        with transaction as conn:
            now_us = clock()  # under the locks: see SqlStore.write
            if before_write is not None:
                before_write(batch)
            result = self._write_rows(conn, batch, now_us)
        if batch.price_catalog is not None and batch.events:
            self._catalogs_kept.add(batch.price_catalog.id)
        return result

    def _insert_idempotent(
        self,
        conn: Connection,
        shape: RowShape,
        rows: list[Row],
        statuses: list[WriteStatus | None],
        now_us: int,
    ) -> list[WriteStatus]:
        """Events through COPY and one INSERT ... SELECT (see `ingest`); other rows as on
        SQLite (few, and their tables are not partitioned)."""
        if shape is not EVENTS:
            return super()._insert_idempotent(conn, shape, rows, statuses, now_us)
        if not rows:
            return []
        return _finished(
            copy_events(
                conn,
                rows,
                statuses,
                now_us,
                compare=lambda stored, incoming: _compare(EVENTS, stored, incoming),
                stored_content=lambda conn, rows: self._stored_content(conn, EVENTS, rows),
            )
        )

    # -- what SQLite does to its file, a server does itself -------------------------------

    def backup_to(self, path: Path, progress: Callable[[int, int], None] | None = None) -> None:
        raise StoreError(
            f"{self.shown_url} is a PostgreSQL ledger: back it up with pg_dump (or copy it "
            "into a SQLite file, which `payoff copy` reads back)"
        )

    def integrity_problems(self) -> list[str]:
        """None to report: the server checks its own pages (and `payoff verify` the ledger)."""
        return []
