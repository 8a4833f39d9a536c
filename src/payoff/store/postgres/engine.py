"""Connecting to PostgreSQL: the URL, the driver (psycopg 3), and how a lock wait ends.

A write waits for the locks of other writers (`locks`) at most the busy timeout, the same
setting as SQLite's: PostgreSQL's `lock_timeout` ends the wait, and the error becomes
LedgerBusy (nothing was written, trying again is safe), as SQLite's busy error does.
"""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import ExceptionContext

from payoff.core.errors import LedgerBusy, StoreError
from payoff.store.busy import BUSY_TIMEOUT_S

LOCK_NOT_AVAILABLE = "55P03"
UNIQUE_VIOLATION = "23505"
BYTE_ORDER_COLLATIONS = ("C", "POSIX", "C.UTF-8", "C.utf8")
RETRYABLE = frozenset({"40001", "40P01"})
"""serialization_failure and deadlock_detected: the transaction was rolled back whole and
may simply run again."""


def driver_url(url: str) -> str:
    """The SQLAlchemy URL for psycopg 3, whichever PostgreSQL scheme the user wrote."""
    _, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}"


def shown_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def sqlstate(error: BaseException | None) -> str | None:
    """The SQLSTATE of a psycopg error (wrapped by SQLAlchemy or not)."""
    original = getattr(error, "orig", error)
    return getattr(original, "sqlstate", None)


def postgres_engine(url: str, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Engine:
    if find_spec("psycopg") is None:
        raise StoreError("a PostgreSQL ledger needs psycopg: pip install 'payoff[postgres]'")
    # 0 would mean "wait forever" to PostgreSQL; SQLite's 0 means "do not wait".
    lock_timeout_ms = max(1, round(busy_timeout_s * 1000))
    engine = create_engine(
        driver_url(url),
        connect_args={"options": f"-c lock_timeout={lock_timeout_ms}"},
        pool_pre_ping=True,
    )
    shown = shown_url(url)

    @event.listens_for(engine, "handle_error")
    def _busy(context: ExceptionContext) -> None:
        if sqlstate(context.original_exception) == LOCK_NOT_AVAILABLE:
            raise LedgerBusy(
                f"the ledger {shown} is busy: another writer held its lock for "
                f"{busy_timeout_s:g} s; nothing was written, try again"
            ) from None

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.adapters.register_loader("numeric", _integral_numeric_loader())
        # Times are integers and text compares by bytes; nothing here depends on the
        # session's time zone, but a fixed one keeps server-side dates out of surprises.
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SET TIME ZONE 'UTC'")
        dbapi_connection.commit()

    return engine


def check_collation(engine: Engine) -> None:
    """Refuse a database whose text does not sort by bytes: listings, invoices and their
    numbering order by ids, and must come out as they do on SQLite."""
    with engine.connect() as conn:
        # ICU collations (PostgreSQL 15's locale provider `i`) never sort by bytes; the
        # column is read through JSON so that servers before 15, which lack it, pass too.
        collation, provider = conn.exec_driver_sql(
            "SELECT datcollate, to_jsonb(d) ->> 'datlocprovider' FROM pg_database AS d "
            "WHERE datname = current_database()"
        ).one()
    if provider == "i":
        collation = "an ICU collation"
    if collation not in BYTE_ORDER_COLLATIONS:
        raise StoreError(
            f"the database sorts text by {collation!r}; payoff needs byte order: create it "
            "with CREATE DATABASE ... TEMPLATE template0 LC_COLLATE 'C' LC_CTYPE 'C'"
        )


def _integral_numeric_loader() -> type:
    """A loader of NUMERIC that gives whole numbers as int, as SQLite does.

    PostgreSQL's SUM of a BIGINT column is a NUMERIC (it cannot overflow); psycopg would make
    it a Decimal, and a Decimal where SQLite gives an int prints and hashes differently (an
    invoice's inputs digest, JSON). Only values written without a point or an exponent are
    whole: an AVG's "2.000" stays a Decimal.
    """
    # Imported by name: psycopg is an optional extra, and the package type-checks without it.
    numeric_loader = import_module("psycopg.types.numeric").NumericLoader

    def load(self: Any, data: Any) -> Any:
        text = bytes(data)
        if text.lstrip(b"-").isdigit():
            return int(text)
        return numeric_loader.load(self, data)

    return type("IntegralNumericLoader", (numeric_loader,), {"load": load})
