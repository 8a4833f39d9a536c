"""The embedded default backend: one SQLite file, WAL, one writer, batched transactions.

`synchronous=FULL` makes each committed batch durable even across power loss; with batches
of thousands of records that costs one fsync per batch, not per record.

Every write transaction takes the write lock when it begins (`BEGIN IMMEDIATE`). A
transaction begun deferred reads first and asks for the lock at its first write; if another
connection committed in between, its snapshot is stale and SQLite refuses it at once,
without waiting (`database is locked`, whatever the busy timeout). Begun immediate, it waits
for the lock, up to the busy timeout, and then reads the latest commit. A lock still held
when the timeout is over is LedgerBusy: nothing was written, and trying again is safe.

Backups use SQLite's online backup API from inside one read transaction: in WAL mode a
reader never blocks a writer, so the server keeps writing while the copy is made, and the
copy is the ledger as committed when that transaction began.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import SQLAlchemyError

from payoff.core.errors import LedgerBusy, StoreError
from payoff.store.busy import BUSY_TIMEOUT_S
from payoff.store.protocol import LedgerCounts
from payoff.store.sql import SqlStore

LOCK_ERRORS = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
BACKUP_STEP_PAGES = 1024
"""Pages copied per backup step (4 MiB at SQLite's default page size): progress is told
once a step. Writers are not held up by the steps; the size only sets how often."""
INTEGRITY_PROBLEMS_SHOWN = 10
WRITE_CACHE_KIB = 32 * 1024
"""Page cache of a writing connection: the id index of a few million events."""

Progress = Callable[[int, int], None]
"""`progress(pages_copied, pages_total)`, after each step of a copy."""


def sqlite_engine(
    path: str | Path,
    settings: dict[str, bool] | None = None,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
) -> Engine:
    # The sqlite3 module's `timeout` is SQLite's busy timeout, set as the connection opens,
    # so that it covers the first statements too (the journal mode is read under a lock).
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": busy_timeout_s})
    settings = {"autocheckpoint": True} if settings is None else settings

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin, so that
        # SAVEPOINTs work and writes take the lock up front (BEGIN IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        if not settings["autocheckpoint"]:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    @event.listens_for(engine, "handle_error")
    def _busy(context: ExceptionContext) -> None:
        # Raised here, the error replaces SQLAlchemy's once the transaction is rolled back.
        if _is_lock_error(context.original_exception):
            raise LedgerBusy(
                f"the ledger {path} is busy: another process held its write lock for "
                f"{busy_timeout_s:g} s; nothing was written, try again"
            ) from None

    return engine


def _is_lock_error(error: BaseException) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return (
        isinstance(error, sqlite3.OperationalError)
        and code is not None
        and (
            code & 0xFF in LOCK_ERRORS  # extended codes (SQLITE_BUSY_SNAPSHOT...) keep the primary
        )
    )


class SqliteStore(SqlStore):
    """A ledger in one SQLite file."""

    def __init__(self, path: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._settings = {"autocheckpoint": True}
        super().__init__(sqlite_engine(self.path, self._settings, busy_timeout_s))

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

    def integrity_problems(self) -> list[str]:
        """What `PRAGMA integrity_check` finds in the file (at most a few); none when sound."""
        with self.engine.connect() as conn:
            found = conn.exec_driver_sql(f"PRAGMA integrity_check({INTEGRITY_PROBLEMS_SHOWN})")
            return [line for line in found.scalars() if line != "ok"]

    def _connect_for_write(self) -> Connection:
        conn = self.engine.connect().execution_options(sqlite_immediate=True)
        # The index pages a batch of random ids dirties stay cached for the next one,
        # rather than read back from the file (SQLite's default keeps 2 MB).
        # Through the driver: a statement of the engine's would begin a transaction.
        driver = conn.connection.dbapi_connection
        assert driver is not None
        driver.execute(f"PRAGMA cache_size = -{WRITE_CACHE_KIB}")
        return conn

    def backup_to(self, path: Path, progress: Progress | None = None) -> None:
        """Copy the ledger into a new SQLite file at `path`, step by step, while writers go on.

        The source is read inside one transaction, so every step copies the same snapshot
        (a step outside it would restart the copy whenever a writer commits). The copy is
        left in rollback-journal mode: one self-contained file, with no -wal beside it.
        """
        source = sqlite3.connect(self.path, isolation_level=None, timeout=self.busy_timeout_s)
        target = sqlite3.connect(path, isolation_level=None)
        try:
            source.execute("BEGIN")
            source.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot
            _copy(source, target, progress)
            source.execute("COMMIT")
            target.execute("PRAGMA journal_mode=DELETE").fetchone()
        finally:
            target.close()
            source.close()


def _copy(
    source: sqlite3.Connection, target: sqlite3.Connection, progress: Progress | None
) -> None:
    def step(_status: int, remaining: int, total: int) -> None:
        if progress is not None:
            progress(total - remaining, total)

    source.backup(target, pages=BACKUP_STEP_PAGES, progress=step, sleep=0)


def restore_file(backup: Path, ledger: Path, progress: Progress | None = None) -> None:
    """Write a backup's pages over the ledger at `ledger`, in one transaction of the ledger.

    Refused while any other connection has the ledger open (a running `payoff serve`, an
    ingest): the ledger is locked exclusively, without waiting, before anything is written.
    Going through SQLite (rather than copying the file) also folds a WAL left by a crash
    and keeps the ledger whole if the restore itself is cut short.
    """
    source = _read_only(backup)
    target = sqlite3.connect(ledger, isolation_level=None, timeout=0)
    try:
        target.execute("PRAGMA locking_mode=EXCLUSIVE")
        try:
            target.execute("BEGIN EXCLUSIVE")
        except sqlite3.OperationalError:
            raise StoreError(
                f"ledger {ledger} is open in another process (a running `payoff serve`?): "
                "stop it, then restore"
            ) from None
        target.execute("COMMIT")  # the exclusive lock stays held until the connection closes
        _copy(source, target, progress)
    finally:
        target.close()
        source.close()


@dataclass(frozen=True)
class LedgerFileCheck:
    """What a ledger file holds, read without changing it."""

    integrity_problems: tuple[str, ...]
    """What `PRAGMA integrity_check` found; empty when the file is sound."""
    revision: str | None
    """The migration revision the file is at; None when it has none (not a ledger)."""
    counts: LedgerCounts | None
    """None when the file is not sound or not a ledger."""


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change the file (nor create it when it is missing)."""
    return sqlite3.connect(
        f"{path.resolve().as_uri()}?mode=ro",
        uri=True,
        isolation_level=None,
        check_same_thread=False,
    )


def known_revision(revision: str) -> bool:
    """Whether this payoff's migrations know `revision` (a newer payoff's are unknown)."""
    from alembic.script import ScriptDirectory

    scripts = ScriptDirectory(str(Path(__file__).parent / "migrations"))
    return revision in {script.revision for script in scripts.walk_revisions()}


def check_file(path: Path) -> LedgerFileCheck:
    """Check a ledger file (a backup) read-only: integrity, migration revision, counts."""
    store = SqlStore(create_engine("sqlite://", creator=lambda: _read_only(path)))
    try:
        with store.engine.connect() as conn:
            found = conn.exec_driver_sql(
                f"PRAGMA integrity_check({INTEGRITY_PROBLEMS_SHOWN})"
            ).scalars()
            problems = tuple(line for line in found if line != "ok")
            has_revision = conn.execute(
                text(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
                )
            ).first()
            revision = (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if has_revision
                else None
            )
        counts = store.counts() if not problems and revision is not None else None
    except (OSError, sqlite3.Error, SQLAlchemyError) as exc:  # not a database, or unreadable
        reason = getattr(exc, "orig", None) or exc
        return LedgerFileCheck((f"cannot read {path}: {reason}",), None, None)
    finally:
        store.close()
    return LedgerFileCheck(problems, revision, counts)
