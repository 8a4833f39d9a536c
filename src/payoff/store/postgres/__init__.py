"""The PostgreSQL backend: the same store contract, for several processes and hosts at once.

`open_store("postgresql://user@host/db")` opens it (psycopg 3: `pip install 'payoff[postgres]'`).
The tables, queries and migrations are SqlStore's; what differs is here:

- `engine`: the URL, the driver, and a lock wait that ends in LedgerBusy (`lock_timeout`);
- `locks`: transaction-level advisory locks in place of SQLite's one write lock;
- `ingest`: events go in through COPY into a staging table and INSERT ... SELECT; the
  rollups (`store.rollups`) of the same transaction read the accepted ones from there;
- `partitions`: events are partitioned by month, created as records for a month arrive.
"""

from __future__ import annotations

POSTGRES_SCHEMES = ("postgresql://", "postgres://", "postgresql+psycopg://")


def is_postgres_url(target: str) -> bool:
    """Whether a ledger target names a PostgreSQL server rather than a SQLite file."""
    return target.startswith(POSTGRES_SCHEMES)
