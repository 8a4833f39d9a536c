"""What only the PostgreSQL backend has: its URL, its collation check, its lock waits, and the
throwaway cluster the tests run it on."""

from __future__ import annotations

from pathlib import Path

import pytest

import postgres_cluster
from factories import usage
from payoff.core.errors import LedgerBusy, StoreError
from payoff.store import open_store
from payoff.store.postgres.engine import driver_url, shown_url
from payoff.store.postgres.locks import lock_ledger
from payoff.store.postgres.store import PostgresStore


def test_missing_binaries_skip_on_a_laptop_and_fail_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no PostgreSQL 15 binaries"):
        postgres_cluster.require_binaries(tmp_path)
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        postgres_cluster.require_binaries(tmp_path)


def test_urls_name_the_driver_and_hide_the_password() -> None:
    assert driver_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert driver_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert shown_url("postgresql://u:secret@h:5432/db") == "postgresql://u:***@h:5432/db"


def test_a_database_that_does_not_sort_by_bytes_is_refused(
    pg_cluster: postgres_cluster.Cluster,
) -> None:
    pg_cluster.admin(
        "CREATE DATABASE unsorted TEMPLATE template0 LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'"
    )
    open_store(pg_cluster.url("unsorted")).close()  # C.UTF-8 sorts by code point: bytes
    pg_cluster.admin(
        "CREATE DATABASE by_words TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
    )
    with pytest.raises(StoreError, match="needs byte order"):
        open_store(pg_cluster.url("by_words"))


def test_a_write_that_waits_past_the_busy_timeout_is_ledger_busy(postgres_url: str) -> None:
    holder = open_store(postgres_url)
    waiter = open_store(postgres_url, busy_timeout_s=0.2)
    assert isinstance(holder, PostgresStore)
    try:
        with holder.engine.connect() as conn, conn.begin():
            lock_ledger(conn, shared=False)  # an invoice run in progress, say
            with pytest.raises(LedgerBusy, match="nothing was written"):
                waiter.committed_now_us(lambda: 0)
        assert waiter.committed_now_us(lambda: 7) == 7
    finally:
        holder.close()
        waiter.close()


def test_a_new_database_is_migrated_on_first_open(pg_cluster: postgres_cluster.Cluster) -> None:
    url = pg_cluster.fresh_database(migrated=False)
    store = open_store(url)
    try:
        assert store.counts().events == 0
    finally:
        store.close()
    assert usage("e1")["id"] == "e1"
