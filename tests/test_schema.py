"""The metadata in store/schema.py and the ledger the migrations build are the same shape."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from payoff.store import open_store
from payoff.store.schema import metadata


def test_a_freshly_migrated_ledger_matches_the_declared_schema(tmp_path: Path) -> None:
    open_store(tmp_path / "ledger.db").close()
    engine = create_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        engine.dispose()
    assert differences == []
