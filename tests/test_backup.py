"""Backups of a ledger in use, and restoring them: real SQLite files, real writers."""

from __future__ import annotations

import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from api_support import live_server, prepare_ledger
from factories import jsonl, usage
from payoff.core.errors import StoreError
from payoff.service import backup as backups
from payoff.service import ingest_lines
from payoff.store import open_store, sqlite

STEPS_PER_BATCH = 5


def _batch(number: int) -> list[tuple[int, bytes]]:
    """One task's steps: a batch is whole in a copy, or absent."""
    records = [
        usage(f"b{number}-s{step}", task=f"task{number:05}") for step in range(STEPS_PER_BATCH)
    ]
    return [(line, msgspec.json.encode(r)) for line, r in enumerate(records, start=1)]


def _batches_in(path: Path) -> list[int]:
    """The batch numbers a copy holds, after checking each batch is whole."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = conn.execute("SELECT task, count(*) FROM events GROUP BY task ORDER BY task")
        found = [(task, steps) for task, steps in rows]
        tasks = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
    assert all(steps == STEPS_PER_BATCH for _, steps in found), found
    assert tasks == len(found)
    return [int(task.removeprefix("task")) for task, _ in found]


def test_a_backup_taken_while_a_writer_commits_holds_a_whole_prefix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "l.db"
    store = open_store(db)
    for number in range(200):  # enough pages for many small steps
        ingest_lines(store, _batch(number))
    monkeypatch.setattr(sqlite, "BACKUP_STEP_PAGES", 4)
    committed = threading.Semaphore(0)
    stop = threading.Event()

    def write_on() -> None:
        writer = open_store(db)  # another connection, as a server would be
        number = 200
        while not stop.is_set():
            ingest_lines(writer, _batch(number))
            number += 1
            committed.release()
        writer.close()

    steps: list[tuple[int, int]] = []

    def on_step(copied: int, total: int) -> None:
        steps.append((copied, total))
        # The writer commits between every two steps: a held-up writer would time out here.
        assert committed.acquire(timeout=10)

    thread = threading.Thread(target=write_on)
    thread.start()
    try:
        copy = backups.backup(store, tmp_path / "copy.db", progress=on_step)
    finally:
        stop.set()
        thread.join()
    store.close()
    assert len(steps) > 3 and steps[-1][0] == steps[-1][1]
    numbers = _batches_in(copy.path)
    assert numbers == list(range(len(numbers)))  # a prefix: nothing after a gap
    assert 200 <= len(numbers) < len(_batches_in(db))  # the writer went on past the copy
    assert copy.counts.events == len(numbers) * STEPS_PER_BATCH
    assert copy.revision and copy.size_bytes == copy.path.stat().st_size
    assert stat.S_IMODE(copy.path.stat().st_mode) == 0o600
    assert not Path(f"{copy.path}-wal").exists()  # one self-contained file


def test_a_backup_refuses_to_overwrite_unless_forced(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.db")
    ingest_lines(store, _batch(0))
    target = tmp_path / "copy.db"
    target.write_bytes(b"keep me")
    with pytest.raises(StoreError, match="exists"):
        backups.backup(store, target)
    assert target.read_bytes() == b"keep me"
    backups.backup(store, target, force=True)
    assert _batches_in(target) == [0]
    with pytest.raises(StoreError, match="does not exist"):
        backups.backup(store, tmp_path / "nowhere" / "copy.db")
    store.close()


def test_the_copy_gets_its_name_only_when_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "l.db")
    for number in range(50):
        ingest_lines(store, _batch(number))
    monkeypatch.setattr(sqlite, "BACKUP_STEP_PAGES", 2)
    target = tmp_path / "copy.db"
    seen: list[list[str]] = []

    def crash_midway(copied: int, total: int) -> None:
        seen.append(sorted(p.name for p in tmp_path.iterdir() if "copy" in p.name))
        if len(seen) == 3:
            raise KeyboardInterrupt  # as if the process were stopped mid-copy

    with pytest.raises(KeyboardInterrupt):
        backups.backup(store, target, progress=crash_midway)
    assert all(names and all(n.startswith(".copy.db.") for n in names) for names in seen)
    assert sorted(p.name for p in tmp_path.iterdir() if "copy" in p.name) == []
    store.close()


def test_restore_writes_a_backup_back_and_refuses_an_open_ledger(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    store = open_store(db)
    for number in range(3):
        ingest_lines(store, _batch(number))
    backups.backup(store, tmp_path / "copy.db")
    ingest_lines(store, _batch(3))  # written after the backup: the restore undoes it
    store.counts()  # the store holds an open connection, as a server does
    with pytest.raises(StoreError, match="open in another process"):
        backups.restore(tmp_path / "copy.db", str(db), force=True)
    store.close()
    restored = backups.restore(tmp_path / "copy.db", str(db), force=True)
    assert restored.counts.events == 3 * STEPS_PER_BATCH
    assert _batches_in(db) == [0, 1, 2]
    reopened = open_store(db, create=False)
    assert reopened.counts().tasks == 3
    reopened.close()


def test_a_restore_cut_short_leaves_the_ledger_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "l.db"
    store = open_store(db)
    for number in range(50):
        ingest_lines(store, _batch(number))
    backups.backup(store, tmp_path / "copy.db")
    store.close()
    other = open_store(tmp_path / "other.db")
    ingest_lines(other, _batch(99))
    other.close()
    monkeypatch.setattr(sqlite, "BACKUP_STEP_PAGES", 2)

    def stop_midway(copied: int, total: int) -> None:
        if copied > total // 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backups.restore(tmp_path / "other.db", str(db), stop_midway, force=True)
    assert _batches_in(db) == list(range(50))


def test_restore_refuses_what_is_not_a_sound_ledger(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    open_store(db).close()
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        backups.restore(tmp_path / "junk.db", str(db), force=True)
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(StoreError, match="not a payoff ledger"):
        backups.restore(tmp_path / "other.db", str(db), force=True)
    with pytest.raises(StoreError, match="no backup"):
        backups.restore(tmp_path / "missing.db", str(db), force=True)
    newer = tmp_path / "newer.db"
    open_store(newer).close()
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(StoreError, match="newer payoff"):
        backups.restore(newer, str(db), force=True)


def _payoff(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "payoff.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_backup_of_a_live_server_receiving_batches(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    keys = prepare_ledger(db)
    stop = threading.Event()
    sent: list[int] = []

    with live_server(db, tmp_path / "server.log") as server:

        def send() -> None:
            with httpx.Client(base_url=server.url, headers=keys.header(keys.ingest)) as client:
                number = 0
                while not stop.is_set():
                    body = jsonl(*(msgspec.json.decode(line) for _, line in _batch(number)))
                    assert client.post("/v1/events", content=body).status_code == 200
                    sent.append(number)
                    number += 1

        thread = threading.Thread(target=send)
        thread.start()
        try:
            while len(sent) < 20:
                time.sleep(0.01)
            done = _payoff("--db", str(db), "backup", str(tmp_path / "copy.db"))
            before = len(sent)
            while len(sent) < before + 5:  # the server still takes batches after the copy
                time.sleep(0.01)
            refused = _payoff("--db", str(db), "restore", str(tmp_path / "copy.db"), "--force")
        finally:
            stop.set()
            thread.join()
    assert done.returncode == 0, done.stderr
    assert "integrity check ok" in done.stdout
    numbers = _batches_in(tmp_path / "copy.db")
    assert numbers == list(range(len(numbers))) and len(numbers) >= 20
    assert refused.returncode == 2 and "open in another process" in refused.stderr
    again = _payoff("--db", str(db), "backup", str(tmp_path / "copy.db"))
    assert again.returncode == 2 and "exists" in again.stderr


def test_restore_refuses_to_replace_records_unless_forced(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    store = open_store(db)
    ingest_lines(store, _batch(0))
    backups.backup(store, tmp_path / "copy.db")
    ingest_lines(store, _batch(1))
    store.close()
    with pytest.raises(StoreError, match="pass --force"):
        backups.restore(tmp_path / "copy.db", str(db))
    reopened = open_store(db, create=False)
    assert reopened.counts().events == 2 * STEPS_PER_BATCH  # nothing replaced
    reopened.close()
    backups.restore(tmp_path / "copy.db", str(db), force=True)
    assert _batches_in(db) == [0]
