"""PostgresStore: SqlStore on a PostgreSQL server, with locks in place of SQLite's one writer."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from payoff.core.errors import StoreError
from payoff.store.busy import BUSY_TIMEOUT_S
from payoff.store.postgres.engine import RETRYABLE, postgres_engine, shown_url, sqlstate
from payoff.store.postgres.ingest import copy_events
from payoff.store.postgres.locks import lock_ledger, lock_tasks
from payoff.store.postgres.partitions import Partitions
from payoff.store.protocol import (
    EVENTS,
    OUTCOMES,
    TASK_UPDATES,
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
    def _batch_transaction(self, batch: WriteBatch) -> Iterator[Connection]:
        """A batch of records: beside other batches, holding the locks of its tasks."""
        with self.engine.connect() as conn, conn.begin():
            # Verdicts change what an outcome is worth: they are written alone.
            lock_ledger(conn, shared=not batch.attestations)
            lock_tasks(conn, _named_tasks(batch))
            yield conn

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


def _named_tasks(batch: WriteBatch) -> Iterator[Any]:
    for shape, rows in (
        (EVENTS, batch.events),
        (TASK_UPDATES, batch.task_updates),
        (OUTCOMES, batch.outcomes),
    ):
        at = shape.column_index("task")
        yield from (row[at] for row in rows)
