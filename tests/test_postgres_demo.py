"""The demo's ledger gives the same answers, byte for byte, on SQLite and on PostgreSQL: the
invoices, the report, the integrity flags and `payoff verify` (the rollups recomputed from
the events among what it checks), in `--json`; and so does its `payoff copy`."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from payoff.cli import app
from postgres_cluster import Cluster

pytestmark = pytest.mark.slow

PERIOD = "2026-11"


def questions(as_of: str) -> dict[str, list[str]]:
    """The commands whose `--json` answers must agree, as of one time on both ledgers."""
    return {
        "invoices": ["invoice", "run", "--period", PERIOD, "--as-of", as_of],
        "invoice-list": ["invoice", "list", "--period", PERIOD],
        "report": ["report", "--period", PERIOD, "--as-of", as_of],
        "report-by-model": ["report", "--period", PERIOD, "--by", "model", "--as-of", as_of],
        "tables": ["tables", "--period", PERIOD, "--as-of", as_of],
        "integrity": ["integrity", "--period", PERIOD],
        "verify": ["verify"],
    }


def make_demo(db: str) -> None:
    made = CliRunner().invoke(app, ["demo", "--db", db, "--customers", "3", "--seed", "11"])
    assert made.exit_code == 0, made.output


def answers(db: str, as_of: str) -> dict[str, str]:
    found = {}
    for name, command in questions(as_of).items():
        result = CliRunner().invoke(app, [*command, "--json", "--db", db])
        assert result.exit_code == 0, (name, result.output)
        found[name] = result.stdout
    return found


def settled_now() -> str:
    """A whole second after every record both demos stamped: an as-of time both share."""
    time.sleep(1.1)
    return datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_demo_answers_the_same_on_both_backends_and_after_a_copy(
    tmp_path: Path, pg_cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo's charts land here
    sqlite_db, on_server = str(tmp_path / "demo.db"), pg_cluster.fresh_database()
    make_demo(sqlite_db)
    make_demo(on_server)
    copied = pg_cluster.fresh_database(migrated=False)
    copy = CliRunner().invoke(app, ["copy", "--from", sqlite_db, "--to", copied])
    assert copy.exit_code == 0, copy.output
    assert "the same on both sides" in copy.stdout
    as_of = settled_now()
    on_sqlite = answers(sqlite_db, as_of)
    assert '"total"' in on_sqlite["invoices"] and '"flags"' in on_sqlite["integrity"]
    assert json.loads(on_sqlite["verify"])["rollups"] == []
    for ledger in (on_server, copied):
        found = answers(ledger, as_of)
        for name in on_sqlite:
            assert found[name] == on_sqlite[name], (name, ledger)
