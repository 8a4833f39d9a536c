from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import postgres_cluster
from factories import jsonl
from payoff.service import IngestReport, ingest_lines, numbered_lines
from payoff.store import open_store
from payoff.store.protocol import Store


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[postgres_cluster.Cluster]:
    """A throwaway PostgreSQL 15 cluster for the session (see tests/postgres_cluster.py)."""
    postgres_cluster.require_binaries()
    with postgres_cluster.running_cluster() as cluster:
        postgres_cluster.migrate_template(cluster)
        yield cluster


@pytest.fixture
def postgres_url(pg_cluster: postgres_cluster.Cluster) -> str:
    """The URL of a new, migrated PostgreSQL ledger of the test's own."""
    return pg_cluster.fresh_database()


BACKENDS = [
    name.strip()
    for name in os.environ.get("PAYOFF_TEST_BACKENDS", "sqlite,postgres").split(",")
    if name.strip()
]
"""The backends the store contract runs on (PAYOFF_TEST_BACKENDS=sqlite for a quick loop)."""


@pytest.fixture(params=BACKENDS)
def ledger_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new ledger on each backend in turn: a SQLite file, then a PostgreSQL database."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "ledger.db")


@pytest.fixture
def store(ledger_target: str) -> Iterator[Store]:
    """An open ledger on each backend in turn: every test written against it is part of the
    store contract, run unchanged on SQLite and PostgreSQL. Whatever a test wrote, the
    rollups still sum the events when it ends (every path that writes events keeps them)."""
    opened = open_store(ledger_target)
    yield opened
    try:
        assert opened.rollup_mismatches() == []
    finally:
        opened.close()


@pytest.fixture
def ingest(store: Store) -> Callable[..., IngestReport]:
    def run(*records: dict[str, Any] | bytes) -> IngestReport:
        return ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*records))))

    return run
