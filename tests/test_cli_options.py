"""The ledger options go before or after the command, the environment still counts, and
`payoff --version` answers."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import OUTCOME_PLAN, jsonl, usage
from payoff.cli import app
from payoff.core.errors import StoreError

runner = CliRunner()


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    db = tmp_path / "l.db"
    code, _, _ = run("--db", str(db), "ingest", "-", input=jsonl(usage("e1", task="t1")))
    assert code == 0
    return db


def test_version() -> None:
    code, stdout, _ = run("--version")
    assert code == 0 and stdout.strip() == f"payoff {version('payoff')}"


@pytest.mark.parametrize(
    "command",
    [
        ("tasks", "--json"),
        ("customers", "list", "--json"),
        ("plans", "list", "--json"),
        ("invoice", "list", "--json"),
        ("outcomes", "list", "--json"),
    ],
)
def test_db_before_or_after_the_command_is_the_same(ledger: Path, command: tuple[str]) -> None:
    before = run("--db", str(ledger), *command)
    after = run(*command, "--db", str(ledger))
    assert before[0] == 0, before[2]
    assert before == after


def test_after_the_command_wins_over_before_and_over_the_environment(
    ledger: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "missing.db"
    code, stdout, _ = run("--db", str(missing), "tasks", "--json", "--db", str(ledger))
    assert code == 0 and [t["id"] for t in json.loads(stdout)] == ["t1"]
    monkeypatch.setenv("PAYOFF_DB", str(missing))
    code, stdout, _ = run("tasks", "--db", str(ledger), "--json")
    assert code == 0 and len(json.loads(stdout)) == 1
    result = runner.invoke(app, ["tasks", "--json"])  # the environment's, which is not there
    assert isinstance(result.exception, StoreError) and "no ledger at" in str(result.exception)
    assert not missing.exists()


def test_environment_still_read(ledger: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYOFF_DB", str(ledger))
    code, stdout, _ = run("tasks", "--json")
    assert code == 0 and len(json.loads(stdout)) == 1


def test_prices_after_the_command(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "prices:\n  - provider: self-hosted\n    model: mine\n"
        "    input_mtok: '1'\n    output_mtok: '2'\n"
    )
    record = usage("e1", task="t1", provider="self-hosted", model="mine")
    db = tmp_path / "l.db"
    code, stdout, stderr = run(
        "ingest", "-", "--json", "--db", str(db), "--prices", str(prices), input=jsonl(record)
    )
    assert code == 0, stderr
    code, stdout, _ = run("tasks", "--json", "--db", str(db))
    (task,) = json.loads(stdout)
    assert task["unpriced_steps"] == 0 and task["cost_usd"] == "0.001800000"
    code, _, stderr = run("tasks", "--prices", str(tmp_path / "none.yaml"), "--db", str(db))
    # Rich wraps the message in a box as wide as the terminal: read it as words.
    words = " ".join(stderr.replace("│", " ").split())
    assert code == 2 and "does not exist" in words


def test_invoice_run_takes_the_ledger_after_the_command(tmp_path: Path) -> None:
    db, plan = tmp_path / "l.db", tmp_path / "plan.yaml"
    plan.write_text(OUTCOME_PLAN)
    assert run("plans", "apply", str(plan), "--db", str(db))[0] == 0
    assert run("subscribe", "acme", "outcomes", "--from", "2026-11-01", "--create",
               "--db", str(db))[0] == 0  # fmt: skip
    code, stdout, stderr = run("invoice", "run", "--db", str(db), "--period", "2026-11", "--json")
    assert code == 0, stderr
    assert [doc["customer"] for doc in json.loads(stdout)] == ["acme"]
