"""Nothing lost, nothing twice: `payoff ingest` and `payoff serve` killed, then run again.

The first test kills ingest once, between two commits. The others run the crash
harness (crash_harness.py): many kills at seeded random moments, each run compared with a
clean one. Each prints its seed; PAYOFF_CRASH_SEED=<seed> replays a run.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from crash_harness import CrashTally, crash_ingest, crash_serve, seed_from_env
from payoff.demo import generate
from payoff.service.ingest import FILE_COMMIT_ROWS
from reliability import record, size

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


# -- the crash harness: many kills at random moments, compared with a clean run ------------


INGEST_GUARANTEE = (
    "killed at random moments and run again, ingest stores every record once, with the costs "
    "of a clean run"
)
SERVE_GUARANTEE = (
    "a server killed under load loses no acknowledged record and half-stores no request; "
    "re-sent batches double nothing; costs equal a clean run's"
)
WORKERS_GUARANTEE = (
    "killing `serve --workers 2` ends its workers; the restarted server loses nothing acknowledged"
)
ADMIN_GUARANTEE = "admin writes during ingest over HTTP: no 5xx (busy is 503 with Retry-After)"


def _report(tally: CrashTally, guarantee: str) -> None:
    record(f"crash: {tally.target}", guarantee, tally.figures(), tally.problems)
    assert not tally.problems, f"seed {tally.seed} (PAYOFF_CRASH_SEED replays it):\n" + "\n".join(
        tally.problems
    )


def test_ingest_killed_at_random_moments_stores_every_record_once(tmp_path: Path) -> None:
    seed = seed_from_env()
    print(f"PAYOFF_CRASH_SEED={seed}")
    tally = crash_ingest(tmp_path, seed, size("CRASH_INGEST_RECORDS"), size("CRASH_INGEST_KILLS"))
    assert tally.kills == size("CRASH_INGEST_KILLS")
    _report(tally, INGEST_GUARANTEE)


def test_serve_killed_under_load_loses_no_acknowledged_record(tmp_path: Path) -> None:
    seed = seed_from_env()
    print(f"PAYOFF_CRASH_SEED={seed}")
    tally = crash_serve(tmp_path, seed, size("CRASH_SERVE_KILLS"))
    assert tally.kills == size("CRASH_SERVE_KILLS") and tally.acknowledged_checks > 0
    _report(tally, SERVE_GUARANTEE)


def test_a_killed_multi_worker_server_leaves_no_worker_behind(tmp_path: Path) -> None:
    seed = seed_from_env()
    print(f"PAYOFF_CRASH_SEED={seed}")
    kills = size("CRASH_WORKERS_KILLS")
    tally = crash_serve(tmp_path, seed, kills, workers=2, clients=1, max_tasks=5)
    _report(tally, WORKERS_GUARANTEE)


def test_admin_writes_while_records_flow_in_are_never_answered_5xx(tmp_path: Path) -> None:
    seed = seed_from_env()
    print(f"PAYOFF_CRASH_SEED={seed}")
    seconds = size("ADMIN_LOAD_SECONDS")
    tally = crash_serve(tmp_path, seed, 0, admin_writers=1, clients=2, load_seconds=seconds)
    assert tally.admin_writes > 0
    tally.target += ", admin writes"
    _report(tally, ADMIN_GUARANTEE)
