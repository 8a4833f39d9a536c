"""The server's writer thread: group commits, each caller its own statuses, failures isolated."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from payoff.catalog import Catalog
from payoff.core.errors import Busy, LedgerBusy
from payoff.service.ingest import build_batch
from payoff.service.writer import LedgerWriter, WriterClosed
from payoff.store import SqliteStore, open_store
from payoff.store.busy import BUSY_TIMEOUT_S
from payoff.store.protocol import WriteBatch, WriteResult


class GatedStore(SqliteStore):
    """A real SQLite ledger whose first write waits for a gate, and which fails on demand.

    The gate lets the test queue several requests while the writer is busy, so that they are
    committed as one group; `fail_on` injects the failure of one request's rows.
    """

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        super().__init__(path, busy_timeout_s)
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.attempts = 0
        self.writes: list[int] = []
        self.fail_on: str | None = None

    def write(
        self,
        batch: WriteBatch,
        clock: Callable[[], int],
        check: Callable[[WriteBatch], None] | None = None,
    ) -> WriteResult:
        self.attempts += 1
        self.entered.set()
        self.gate.wait(10)
        if self.fail_on is not None and any(row[0] == self.fail_on for row in batch.events):
            raise RuntimeError("injected failure")
        self.writes.append(len(batch))
        return super().write(batch, clock, check)


def request(*ids: str) -> WriteBatch:
    lines = [
        (n, msgspec.json.encode({
            "id": i, "time": "2026-11-03T10:00:00Z", "customer": "acme", "task": "t",
            "kind": "tool", "cost": "0.01"}))
        for n, i in enumerate(ids, start=1)
    ]  # fmt: skip
    batch, problems = build_batch(Catalog(), None, lines)
    assert not problems
    return batch


@pytest.fixture
def store(tmp_path: Path) -> GatedStore:
    open_store(tmp_path / "l.db").close()  # migrate
    return GatedStore(tmp_path / "l.db")


def test_waiting_requests_are_committed_together_and_answered_apart(store: GatedStore) -> None:
    writer = LedgerWriter(store)
    first = writer.submit(request("a1"))
    assert store.entered.wait(10)  # the writer is busy with the first request
    queued = [writer.submit(request(f"b{n}", f"c{n}")) for n in range(5)]
    duplicate = writer.submit(request("a1"))
    store.gate.set()
    assert first.result(10).result.events == [("accepted", None, None)]
    for future in queued:
        assert [s[0] for s in future.result(10).result.events] == ["accepted", "accepted"]
    assert [s[0] for s in duplicate.result(10).result.events] == ["duplicate"]
    writer.close()
    assert store.writes[0] == 1 and len(store.writes) == 2  # the six waiting went as one


def test_a_failing_request_fails_alone(store: GatedStore) -> None:
    store.fail_on = "boom"
    writer = LedgerWriter(store)
    first = writer.submit(request("x1"))
    assert store.entered.wait(10)
    good = writer.submit(request("g1", "g2"))
    bad = writer.submit(request("boom", "g3"))
    store.gate.set()
    assert first.result(10).result.events[0][0] == "accepted"
    assert [s[0] for s in good.result(10).result.events] == ["accepted", "accepted"]
    with pytest.raises(RuntimeError, match="injected"):
        bad.result(10)
    store.fail_on = None
    again = writer.write(request("boom", "g3"))
    assert [s[0] for s in again.result.events] == ["accepted", "accepted"]
    writer.close()
    assert store.counts().events == 5


def test_a_caller_that_stopped_waiting_does_not_stop_the_writer(store: GatedStore) -> None:
    writer = LedgerWriter(store)
    abandoned = writer.submit(request("w1"))
    assert store.entered.wait(10)
    gone = writer.submit(request("w2"))
    assert gone.cancel()
    store.gate.set()
    abandoned.result(10)
    assert writer.write(request("w3")).result.events[0][0] == "accepted"
    writer.close()


def test_a_closed_writer_refuses_as_busy_and_writes_nothing(store: GatedStore) -> None:
    """A request that arrives as the server stops is told to retry, not answered 500."""
    store.gate.set()
    writer = LedgerWriter(store)
    writer.close()
    with pytest.raises(WriterClosed, match="closed"):
        writer.submit(request("late"))
    assert isinstance(WriterClosed("x"), Busy)
    assert store.counts().events == 0


def test_a_busy_ledger_fails_a_waiting_group_at_once_not_request_by_request(
    tmp_path: Path,
) -> None:
    """Busy is the ledger's state, not one request's fault: writing each request of the
    group again alone would make every one of them wait out the busy timeout again."""
    open_store(tmp_path / "l.db").close()  # migrate
    store = GatedStore(tmp_path / "l.db", busy_timeout_s=0.2)
    holder = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    writer = LedgerWriter(store)
    try:
        first = writer.submit(request("f1"))
        assert store.entered.wait(10)
        queued = [writer.submit(request(f"q{n}")) for n in range(3)]
        store.gate.set()
        for future in (first, *queued):
            with pytest.raises(LedgerBusy, match="try again"):
                future.result(10)
        assert store.attempts == 2  # the first request, then the three waiting as one group
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        writer.close()
    assert store.counts().events == 0
