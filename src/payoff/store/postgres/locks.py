"""Transaction-level advisory locks: PostgreSQL's stand-in for SQLite's one write lock.

SQLite lets one transaction write at a time, and the store leans on that: what a write reads
before it writes cannot change under it. On PostgreSQL several processes and hosts write at
once, so each write transaction takes, before its first read, the locks that give it the
same guarantee for what it touches:

- the ledger lock, SHARED by batches of records (they may run side by side) and EXCLUSIVE by
  every other write: invoice runs, finalization, verdicts, plans, keys, re-pricing. An
  exclusive holder therefore waits for every batch in flight to commit, which is what makes
  `committed_now_us` true: once it has the lock, every record stamped up to now is committed;
- one lock per task a batch names, taken in sorted order (so two batches never wait on each
  other in a cycle): the first customer to name a task owns it, and two batches naming the
  same new task for two customers cannot both believe it new.

All are transaction-level (`pg_advisory_xact_lock*`): released by COMMIT or ROLLBACK, so a
crashed process never leaves one behind. Keys are two 32-bit integers: a namespace of
payoff's per kind of lock, and a hash of what is locked (a collision only makes two writers
wait on each other).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import Connection

NAMESPACE = 0x7061796F  # "payo": keeps payoff's keys apart from an application's own
LEDGER = NAMESPACE
TASKS = NAMESPACE + 1
MIGRATIONS = NAMESPACE + 2
PARTITIONS = NAMESPACE + 3


def _key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_ledger(conn: Connection, *, shared: bool) -> None:
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    conn.exec_driver_sql(f"SELECT {function}(%s, %s)", (LEDGER, 0))


def lock_migrations(conn: Connection) -> None:
    """Two processes opening a new database at once migrate it one after the other."""
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (MIGRATIONS,))


def lock_partitions(conn: Connection) -> None:
    """Two writers needing a new month's partition create it one after the other."""
    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(%s, 0)", (PARTITIONS,))


def lock_tasks(conn: Connection, tasks: Iterable[str | None]) -> None:
    """Lock every named task, in key order (a total order every writer shares)."""
    keys = sorted({_key(task) for task in tasks if task is not None})
    if keys:
        # unnest yields the array in order, so the locks are taken in that order.
        conn.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%s, key) FROM unnest(%s::integer[]) AS key",
            (TASKS, keys),
        ).fetchall()
