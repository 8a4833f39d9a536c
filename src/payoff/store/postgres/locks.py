"""Transaction-level advisory locks: PostgreSQL's stand-in for SQLite's one write lock.

SQLite lets one transaction write at a time, and the store leans on that: what a write reads
before it writes cannot change under it. On PostgreSQL several processes and hosts write at
once, so each write transaction takes, before its first read, the locks that give it the
same guarantee for what it touches:

- the ledger lock, SHARED by batches of records (they may run side by side) and EXCLUSIVE by
  every other write: invoice runs, finalization, verdicts, plans, keys, re-pricing. An
  exclusive holder therefore waits for every batch in flight to commit, which is what makes
  `committed_now_us` true: once it has the lock, every record stamped up to now is committed.
  Finalization numbers invoices across customers (the next number of the year), so it is
  serialised ledger-wide, not per customer and period.

Batches side by side need no lock per record or task: a record's id and a task's id are
unique keys, and PostgreSQL makes the second writer of a key wait for the first to commit
(then find it stored); `PostgresStore._create_tasks` checks which batch a new task went to.

All are transaction-level (`pg_advisory_xact_lock*`): released by COMMIT or ROLLBACK, so a
crashed process never leaves one behind. Keys are two 32-bit integers, one of payoff's own
per kind of lock (apart from an application's own advisory locks) and 0.
"""

from __future__ import annotations

from sqlalchemy import Connection

NAMESPACE = 0x7061796F  # "payo": keeps payoff's keys apart from an application's own
LEDGER = NAMESPACE
MIGRATIONS = NAMESPACE + 2
PARTITIONS = NAMESPACE + 3


def lock_ledger(conn: Connection, *, shared: bool) -> None:
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    conn.exec_driver_sql(f"SELECT {function}(%s, %s)", (LEDGER, 0))


def lock_migrations(conn: Connection) -> None:
    """Two processes opening a new database at once migrate it one after the other."""
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (MIGRATIONS,))


def lock_partitions(conn: Connection) -> None:
    """Two writers needing a new month's partition create it one after the other."""
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (PARTITIONS,))
