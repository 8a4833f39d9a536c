"""The embedded default backend: one SQLite file, WAL, one writer, batched transactions.

`synchronous=FULL` makes each committed batch durable even across power loss; with batches
of thousands of records that costs one fsync per batch, not per record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

from payoff.store.sql import SqlStore

BUSY_TIMEOUT_MS = 30_000


def sqlite_engine(path: str | Path, settings: dict[str, bool] | None = None) -> Engine:
    engine = create_engine(f"sqlite:///{path}")
    settings = {"autocheckpoint": True} if settings is None else settings

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so that
        # SAVEPOINTs work and writes take the lock up front (BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        if not settings["autocheckpoint"]:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


class SqliteStore(SqlStore):
    """A ledger in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._settings = {"autocheckpoint": True}
        super().__init__(sqlite_engine(self.path, self._settings))

    def defer_checkpoints(self) -> bool:
        """Stop commits from checkpointing the WAL; `checkpoint()` must then be called.

        By default the commit that grows the WAL past 1,000 pages copies it into the
        database, inside that commit, so one request in a few hundred waits for it. A
        server calls `checkpoint()` from a thread of its own instead.
        """
        self._settings["autocheckpoint"] = False
        self.engine.dispose()  # pooled connections were made with the old setting
        return True

    def checkpoint(self) -> None:
        """Copy the WAL into the database without blocking writers (a passive checkpoint)."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

    def _connect_for_write(self) -> Connection:
        return self.engine.connect().execution_options(sqlite_immediate=True)
