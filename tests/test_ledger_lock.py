"""The ledger's write lock: every write transaction takes it as it begins, waits for it up to
the busy timeout, and a lock held longer is LedgerBusy (503 over HTTP), never a raw error.

The live forms (a server under ingest while admin writes hit it, concurrent invoice runs,
the command line's one line) are in test_ledger_contention.py.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api_support import Keys, prepare_ledger, usage
from factories import jsonl
from payoff.api import ServerConfig, create_app
from payoff.core.errors import Busy, LedgerBusy, StoreError
from payoff.service import access
from payoff.store import open_store
from payoff.store.busy import BUSY_TIMEOUT_S, busy_timeout_from

STORE_SOURCES = Path(__file__).resolve().parents[1] / "src" / "payoff" / "store"


@contextmanager
def write_lock_held(db: Path) -> Iterator[None]:
    """Another connection holds the ledger's write lock until the block ends."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_every_write_transaction_in_the_store_takes_the_lock_as_it_begins() -> None:
    """`engine.begin()` begins deferred: its first write can be refused at once, unwaited."""
    deferred = [
        f"{path.name}:{number}"
        for path in sorted(STORE_SOURCES.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"engine\.begin\(", line)
    ]
    assert deferred == []


def test_a_lock_held_past_the_busy_timeout_is_ledger_busy_and_writes_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "l.db"
    prepare_ledger(db)
    store = open_store(db, busy_timeout_s=0.1)
    try:
        before = len(store.list_keys())
        with write_lock_held(db), pytest.raises(LedgerBusy) as refused:
            access.create_key(store, "ingest", None)
        assert isinstance(refused.value, Busy)
        assert str(refused.value) == (
            f"the ledger {db} is busy: another process held its write lock for 0.1 s; "
            "nothing was written, try again"
        )
        assert len(store.list_keys()) == before
        access.create_key(store, "ingest", None)  # the lock is free again: it goes through
        assert len(store.list_keys()) == before + 1
    finally:
        store.close()


def test_reads_go_on_while_the_lock_is_held(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    prepare_ledger(db)
    store = open_store(db, busy_timeout_s=0.1)
    try:
        with write_lock_held(db):
            assert len(store.list_keys()) == 4
    finally:
        store.close()


@pytest.mark.parametrize(
    ("setting", "seconds"), [(None, BUSY_TIMEOUT_S), ("", BUSY_TIMEOUT_S), ("2.5", 2.5), ("0", 0)]
)
def test_the_busy_timeout_setting(setting: str | None, seconds: float) -> None:
    assert busy_timeout_from(setting) == seconds


@pytest.mark.parametrize("setting", ["soon", "-1", "nan", "inf", "86400"])
def test_a_busy_timeout_that_is_not_seconds_is_refused_naming_the_setting(setting: str) -> None:
    with pytest.raises(StoreError, match=r"PAYOFF_BUSY_TIMEOUT is .*: give seconds, from 0 to"):
        busy_timeout_from(setting)


def test_a_busy_ledger_is_503_with_retry_after_for_admin_writes_and_records(
    tmp_path: Path,
) -> None:
    db = tmp_path / "l.db"
    keys: Keys = prepare_ledger(db)
    config = ServerConfig(str(db), builders=0, busy_timeout_s=0.1)
    with TestClient(create_app(config)) as client, write_lock_held(db):
        admin = keys.header(keys.admin)
        made = client.post("/v1/keys", json={"scope": "ingest"}, headers=admin)
        sent = client.post(
            "/v1/events", content=jsonl(usage("e1")), headers=keys.header(keys.ingest)
        )
        for answer in (made, sent):
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == "1"
            assert "is busy" in answer.json()["detail"]
        assert client.get("/v1/keys", headers=admin).status_code == 200  # reads go on
