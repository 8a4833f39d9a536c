"""Nothing lost, nothing twice: `payoff ingest` killed mid-file, then run again."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from payoff.demo import generate
from payoff.service.ingest import FILE_COMMIT_ROWS

# Every test here starts processes or a live server: seconds each.
pytestmark = pytest.mark.slow

RECORDS = FILE_COMMIT_ROWS + 10_000
"""A file's ingest commits every FILE_COMMIT_ROWS rows: more, so that a kill can land
between two commits."""


def _events(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_sigkill_mid_ingest_loses_nothing_and_a_rerun_adds_nothing_twice(tmp_path: Path) -> None:
    usage = [r for r in generate(seed=11, customers=8, scale=9.0) if "record" not in r]
    assert len(usage) >= RECORDS
    file = tmp_path / "usage.jsonl"
    file.write_bytes(b"".join(msgspec.json.encode(r) + b"\n" for r in usage[:RECORDS]))
    db = tmp_path / "ledger.db"
    payoff = str(Path(sys.executable).with_name("payoff"))

    child = subprocess.Popen(
        [payoff, "--db", str(db), "ingest", str(file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while _events(db) == 0 and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    landed = _events(db)
    assert 0 < landed < RECORDS, "the kill should land between two commits"

    rerun = subprocess.run(
        [payoff, "--db", str(db), "ingest", str(file), "--json"], capture_output=True, check=True
    )
    counts = msgspec.json.decode(rerun.stdout)
    # Unpriced steps are a subset of the accepted ones, reported beside the counts.
    assert 0 <= counts.pop("unpriced") <= RECORDS - landed
    assert counts == {
        "accepted": RECORDS - landed,
        "duplicates": landed,
        "conflicts": 0,
        "rejected": 0,
    }
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*), count(DISTINCT id) FROM events").fetchone() == (
            RECORDS,
            RECORDS,
        )
