"""Moving and upgrading ledgers: `payoff migrate` and `payoff copy`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from payoff.core.errors import StoreError
from payoff.store.busy import BUSY_TIMEOUT_S


@dataclass(frozen=True)
class Migration:
    before: str | None
    """The revision the ledger was at (None: it was new)."""
    after: str


def migrate_ledger(target: str | Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> Migration:
    """Upgrade a ledger, SQLite or PostgreSQL, to this payoff's schema."""
    from payoff.store.opening import packaged_head, upgrade_ledger

    return Migration(upgrade_ledger(target, busy_timeout_s), packaged_head())


@dataclass(frozen=True)
class CopiedTable:
    table: str
    rows: int
    copied: int
    digest: str


def copy_ledger(
    source: str, target: str, *, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> list[CopiedTable]:
    """Copy the ledger at `source` into `target` (resuming an earlier copy), then check that
    every table has the same rows on both sides, by count and digest."""
    from payoff.store.copying import copy_ledger as copy_tables
    from payoff.store.opening import open_store
    from payoff.store.sql import SqlStore

    if str(source) == str(target):
        raise StoreError("payoff copy: --from and --to name the same ledger")
    reader = open_store(source, create=False, busy_timeout_s=busy_timeout_s)
    try:
        writer = open_store(target, busy_timeout_s=busy_timeout_s)
        try:
            assert isinstance(reader, SqlStore) and isinstance(writer, SqlStore)
            checks = copy_tables(reader, writer)
        finally:
            writer.close()
    finally:
        reader.close()
    differing = [check.table for check in checks if not check.same]
    if differing:
        raise StoreError(
            f"the copy differs from the source in {', '.join(differing)} (the target held "
            "other rows before the copy?): it is not a copy of the ledger"
        )
    return [CopiedTable(str(c.table), c.rows, c.copied, c.digest) for c in checks]
