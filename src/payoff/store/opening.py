"""Opening a ledger: create it if asked, and migrate it to the packaged schema."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from payoff.core.errors import StoreError
from payoff.store.busy import BUSY_TIMEOUT_S
from payoff.store.postgres import is_postgres_url
from payoff.store.protocol import Store
from payoff.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
REVISION_LINE = re.compile(r"^(revision|down_revision) = (None|\"(\w+)\")$", re.MULTILINE)


def _alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


@functools.cache
def packaged_head() -> str:
    """The latest revision among the packaged migrations, read from their files.

    Alembic's own machinery takes longer to import than a command takes to run, so opening
    a ledger already at this revision never loads it (a test checks both agree).
    """
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for key, _, revision in REVISION_LINE.findall(script.read_text()):
            (revisions if key == "revision" else parents).add(revision)
    heads = revisions - parents
    assert len(heads) == 1, f"the migrations must form one line, found heads {sorted(heads)}"
    return heads.pop()


def stored_revision(engine: Engine) -> str | None:
    """The revision a ledger is at (None for a new file, which has no version table)."""
    try:
        with engine.connect() as conn:
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except SQLAlchemyError:  # no version table yet: a new ledger
        return None
    return None if revision is None else str(revision)


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision; a no-op when it is already there."""
    if stored_revision(engine) == packaged_head():
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    # Under the write lock from the start: two processes opening a new ledger at once
    # migrate it one after the other, and the second finds it migrated.
    with engine.connect().execution_options(sqlite_immediate=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            from payoff.store.postgres.locks import lock_migrations

            lock_migrations(conn)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def open_store(
    target: str | Path, *, create: bool = True, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> Store:
    """Open a ledger by path or URL, creating (unless `create` is False) and migrating it.

    `busy_timeout_s`: how long a write waits for another process's write lock before
    LedgerBusy.
    """
    text = str(target)
    if is_postgres_url(text):
        return _open_postgres(text, busy_timeout_s)
    if "://" in text and not text.startswith("sqlite:///"):
        scheme = text.split("://", 1)[0]
        raise StoreError(
            f"unsupported ledger URL scheme {scheme!r}; use a SQLite file path or a "
            "postgresql:// URL"
        )
    path = Path(text.removeprefix("sqlite:///"))
    if not create and not path.exists():
        raise StoreError(f"no ledger at {path} (ingest records or run `payoff demo` first)")
    if path.parent and not path.parent.exists():
        raise StoreError(f"cannot create ledger {path}: folder {path.parent} does not exist")
    store = SqliteStore(path, busy_timeout_s)
    try:
        migrate(store.engine)
    except SQLAlchemyError as exc:
        store.close()
        reason = getattr(exc, "orig", None) or exc  # the driver's own message, when there is one
        raise StoreError(f"cannot open ledger {path}: {reason}") from None
    return store


def _open_postgres(url: str, busy_timeout_s: float) -> Store:
    """Open (and migrate) a ledger in a PostgreSQL database, which must exist already."""
    from payoff.store.postgres.engine import check_collation
    from payoff.store.postgres.store import PostgresStore

    store = PostgresStore(url, busy_timeout_s)
    try:
        check_collation(store.engine)
        migrate(store.engine)
    except SQLAlchemyError as exc:
        store.close()
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(f"cannot open ledger {store.shown_url}: {reason}") from None
    except StoreError as exc:
        store.close()
        raise StoreError(f"cannot open ledger {store.shown_url}: {exc}") from None
    return store


def upgrade_ledger(target: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> str | None:
    """Bring a ledger (creating a SQLite one if missing) to the packaged schema; returns the
    revision it was at before (None: new), read before anything is changed."""
    text = str(target)
    engine: Engine | None
    if is_postgres_url(text):
        from payoff.store.postgres.engine import postgres_engine

        engine = postgres_engine(text, busy_timeout_s)
    else:
        path = Path(text.removeprefix("sqlite:///"))
        engine = SqliteStore(path, busy_timeout_s).engine if path.exists() else None
    before = None
    if engine is not None:
        try:
            before = stored_revision(engine)
        finally:
            engine.dispose()
    open_store(target, busy_timeout_s=busy_timeout_s).close()
    return before
