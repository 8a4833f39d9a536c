"""Ledger backends behind one protocol, and the migrations that shape them.

`open_store("./payoff.db")` or `open_store("sqlite:///path.db")` opens (creating and
migrating as needed) the embedded SQLite ledger.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from payoff.core.errors import StoreError
from payoff.store.protocol import Store
from payoff.store.sql import SqlStore
from payoff.store.sqlite import SqliteStore

MIGRATIONS = Path(__file__).parent / "migrations"


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision; a no-op when it is already there."""
    config = _alembic_config()
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def open_store(target: str | Path, *, create: bool = True) -> Store:
    """Open a ledger by path or URL, creating (unless `create` is False) and migrating it."""
    text = str(target)
    if "://" in text and not text.startswith("sqlite:///"):
        scheme = text.split("://", 1)[0]
        raise StoreError(f"unsupported ledger URL scheme {scheme!r}; use a SQLite file path")
    path = Path(text.removeprefix("sqlite:///"))
    if not create and not path.exists():
        raise StoreError(f"no ledger at {path} (ingest records or run `payoff demo` first)")
    if path.parent and not path.parent.exists():
        raise StoreError(f"cannot create ledger {path}: folder {path.parent} does not exist")
    store = SqliteStore(path)
    try:
        migrate(store.engine)
    except SQLAlchemyError as exc:
        store.close()
        reason = getattr(exc, "orig", None) or exc  # the driver's own message, when there is one
        raise StoreError(f"cannot open ledger {path}: {reason}") from None
    return store


__all__ = ["SqlStore", "SqliteStore", "Store", "migrate", "open_store"]
