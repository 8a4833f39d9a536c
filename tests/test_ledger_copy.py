"""`payoff copy` moves a ledger from SQLite to PostgreSQL, checked by counts and digests and
resumed after a crash; `payoff migrate` upgrades either backend."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import jsonl, task, usage
from payoff.cli import app
from payoff.store.opening import packaged_head
from postgres_cluster import Cluster

pytestmark = pytest.mark.slow

EVENTS = 600


def sqlite_ledger(path: Path, prefix: str = "e") -> str:
    records = [usage(f"{prefix}{n}", task=f"t{n % 30}") for n in range(EVENTS)]
    records += [task(f"t{n}", "completed") for n in range(30)]
    result = CliRunner().invoke(app, ["ingest", "-", "--db", str(path)], input=jsonl(*records))
    assert result.exit_code == 0, result.output
    return str(path)


CRASHING_COPY = """
import os, sys
from payoff.store import copying, open_store
copying.CHUNK_ROWS = 50
chunks = 0
def progress(table, copied):
    global chunks
    if table == "events":
        chunks += 1
        if chunks == 3:
            os._exit(9)  # dies mid-copy: no cleanup, no rollback of its own
copying.copy_ledger(open_store(sys.argv[1]), open_store(sys.argv[2]), progress)
"""


def copy(source: str, target: str) -> list[dict[str, object]]:
    result = CliRunner().invoke(app, ["copy", "--from", source, "--to", target, "--json"])
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_a_copy_killed_midway_resumes_and_ends_the_same_as_the_source(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    source, target = sqlite_ledger(tmp_path / "l.db"), pg_cluster.fresh_database()
    crashed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASHING_COPY), source, target], check=False
    )
    assert crashed.returncode == 9
    tables = {table["table"]: table for table in copy(source, target)}
    assert tables["events"]["rows"] == EVENTS
    assert 0 < tables["events"]["copied"] < EVENTS  # resumed: the first chunks were there
    assert {table["copied"] for table in copy(source, target)} == {0}  # a third run: no-op


def test_a_target_holding_other_records_is_not_called_a_copy(
    tmp_path: Path, pg_cluster: Cluster
) -> None:
    target = pg_cluster.fresh_database()
    copy(sqlite_ledger(tmp_path / "a.db"), target)
    other = sqlite_ledger(tmp_path / "b.db", prefix="x")
    result = CliRunner().invoke(app, ["copy", "--from", other, "--to", target])
    assert result.exit_code == 1
    assert "the copy differs from the source in customers, events" in str(result.exception)


def test_migrate_upgrades_either_backend_once(tmp_path: Path, pg_cluster: Cluster) -> None:
    head = packaged_head()
    for ledger in (str(tmp_path / "new.db"), pg_cluster.fresh_database(migrated=False)):
        first = CliRunner().invoke(app, ["migrate", "--db", ledger])
        assert first.exit_code == 0, first.output
        assert first.stdout.rstrip().endswith(f"revision (new) -> {head}")
        again = CliRunner().invoke(app, ["migrate", "--db", ledger])
        assert again.stdout.rstrip().endswith(f"already at revision {head}")
