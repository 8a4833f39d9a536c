"""The `payoff` command, through its runner and as a real process."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import jsonl, usage
from payoff.cli import app

runner = CliRunner()

GOOD_AND_BAD = jsonl(
    usage("e1", task="t1"),
    b'{"id": "e2", "time": "2026-11-03T10:00:00Z"',
    usage("e3", task="t1", colour="red"),
    usage("e4", task="t1", visible=True),
    usage("e4", task="t1", visible=True, output_tokens=1),
    usage("e5", task="t1", provider="nobody", model="unknown-1"),
)


def run(*args: str, input: bytes | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=input)
    return result.exit_code, result.stdout, result.stderr


def test_ingest_reports_counts_and_each_problem(tmp_path: Path) -> None:
    db, file = tmp_path / "l.db", tmp_path / "records.jsonl"
    file.write_bytes(GOOD_AND_BAD)
    code, stdout, stderr = run("--db", str(db), "ingest", str(file), "--json")
    assert code == 1
    assert json.loads(stdout) == {
        "accepted": 3,
        "duplicates": 0,
        "conflicts": 1,
        "rejected": 2,
        "unpriced": 1,
    }
    assert f"{file}:2 id=e2 rejected:" in stderr
    assert f"{file}:3 id=e3 rejected: field `colour`: unknown field" in stderr
    assert f"{file}:5 id=e4 conflict:" in stderr
    # Re-running the same file lands nothing new: every good line is a duplicate.
    code, stdout, _ = run("--db", str(db), "ingest", str(file), "--json")
    assert json.loads(stdout) == {
        "accepted": 0,
        "duplicates": 3,
        "conflicts": 1,
        "rejected": 2,
        "unpriced": 0,
    }


def test_ingest_clean_file_exits_zero_and_reads_stdin(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    code, stdout, _ = run(
        "--db", str(db), "ingest", "-", "--json", input=jsonl(usage("e1"), usage("e2"))
    )
    assert code == 0
    assert json.loads(stdout)["accepted"] == 2


def test_ingest_rejects_file(tmp_path: Path) -> None:
    db, file, rejects = tmp_path / "l.db", tmp_path / "r.jsonl", tmp_path / "rejects.jsonl"
    file.write_bytes(GOOD_AND_BAD)
    run("--db", str(db), "ingest", str(file), "--rejects", str(rejects))
    lines = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert [(p["line"], p["id"], p["status"], p["field"]) for p in lines] == [
        (2, "e2", "rejected", None),
        (3, "e3", "rejected", "colour"),
        (5, "e4", "conflict", "output_tokens"),
    ]


def test_ingest_of_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("payoff")),
            "--db",
            str(tmp_path / "l.db"),
            "ingest",
            str(tmp_path / "nope.jsonl"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "nope.jsonl" in result.stderr


def test_db_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYOFF_DB", str(tmp_path / "env.db"))
    code, _, _ = run("ingest", "-", input=jsonl(usage("e1")))
    assert code == 0 and (tmp_path / "env.db").exists()


def test_tasks_json(tmp_path: Path) -> None:
    db, file = tmp_path / "l.db", tmp_path / "records.jsonl"
    file.write_bytes(GOOD_AND_BAD)
    run("--db", str(db), "ingest", str(file))
    code, stdout, _ = run("--db", str(db), "tasks", "--json")
    assert code == 0
    (task,) = json.loads(stdout)
    assert set(task) == {
        "id",
        "customer",
        "type",
        "status",
        "steps",
        "tokens_total",
        "tokens_visible",
        "tokens_hidden",
        "hidden_ratio",
        "cost_usd",
        "cost_visible_usd",
        "cost_hidden_usd",
        "unpriced_steps",
    }
    assert (task["steps"], task["unpriced_steps"]) == (3, 1)
    assert isinstance(task["cost_usd"], str) and task["cost_usd"] == "0.012000000"
    code, stdout, _ = run("--db", str(db), "tasks", "--customer", "globex", "--json")
    assert json.loads(stdout) == []


def _ledger_dump(db: Path) -> list[tuple[object, ...]]:
    """Every record-derived column of every table (receipt times excluded)."""
    queries = (
        "SELECT id, task_type, occurred_at_us, customer, task, provider, model, input_tokens,"
        " cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens, visible,"
        " cost_nanousd, cost_visible_nanousd, attributes FROM events ORDER BY id",
        "SELECT id, customer, type, status, status_at_us, started_at_us FROM tasks ORDER BY id",
        "SELECT task, status, occurred_at_us FROM task_updates ORDER BY task, status",
        "SELECT id, task, customer, type, value, evidence_digest, occurred_at_us FROM outcomes"
        " ORDER BY id",
    )
    with sqlite3.connect(db) as conn:
        return [row for query in queries for row in conn.execute(query).fetchall()]


@pytest.mark.slow
def test_demo_is_deterministic(tmp_path: Path) -> None:
    first, second, other = tmp_path / "a.db", tmp_path / "b.db", tmp_path / "c.db"
    code, stdout, _ = run("demo", "--db", str(first), "--seed", "3", "--customers", "4")
    assert code == 0
    assert "Where the tokens and the money go" in stdout
    assert "rejected 3" in stdout and "conflicts 1" in stdout and "duplicates 3" in stdout
    run("demo", "--db", str(second), "--seed", "3", "--customers", "4")
    run("demo", "--db", str(other), "--seed", "4", "--customers", "4")
    assert _ledger_dump(first) == _ledger_dump(second)
    assert _ledger_dump(first) != _ledger_dump(other)


def test_demo_shape() -> None:
    from payoff.demo import generate

    records = list(generate(seed=1, customers=6))
    steps = [r for r in records if "record" not in r]
    providers = {r.get("provider") for r in steps if r["kind"] == "llm"}
    assert {"openai", "anthropic", "google"} <= providers
    assert any(r.get("reasoning_tokens") for r in steps)
    assert any(r.get("cache_read_tokens") for r in steps)
    assert any(r["kind"] == "tool" for r in steps)
    statuses = {r["status"] for r in records if r.get("record") == "task"}
    assert statuses == {"completed", "failed"}
    per_customer: dict[str, int] = {}
    for r in records:
        if r.get("record") == "task":
            per_customer[r["customer"]] = per_customer.get(r["customer"], 0) + 1
    assert max(per_customer.values()) > 10 * min(per_customer.values())
    visible = sum(r["output_tokens"] - r["reasoning_tokens"] for r in steps if r.get("visible"))
    total = sum(r.get("input_tokens", 0) + r.get("output_tokens", 0) for r in steps)
    # Every call re-reads its growing context: hidden tokens are hundreds of visible ones.
    assert 100 <= (total - visible) / visible <= 2000


def test_demo_agents_match_published_per_task_figures() -> None:
    """A support run: 8-20 model calls, 20-60k input tokens mostly cached, 1-3k output; a
    coding run: 100k-1M tokens on average; a research run in between."""
    from payoff.demo import generate

    calls: dict[str, dict[str, list[int]]] = {}
    types: dict[str, str] = {}
    for r in generate(seed=1, customers=6):
        if r.get("record") == "task" and r["status"] == "completed":  # runaways: step limit
            types[r["id"]] = r["type"]
        elif r.get("kind") == "llm":
            task = calls.setdefault(r["task"], {"input": [], "cached": [], "output": []})
            task["input"].append(r["input_tokens"])
            task["cached"].append(r["cache_read_tokens"])
            task["output"].append(r["output_tokens"])
    completed = {t: c for t, c in calls.items() if t in types}

    def mean_tokens(kind: str) -> float:
        runs = [c for t, c in completed.items() if types[t] == kind]
        return sum(sum(c["input"]) + sum(c["output"]) for c in runs) / len(runs)

    support = [c for t, c in completed.items() if types[t] == "support.ticket"]
    assert all(len(c["input"]) <= 20 for c in support)
    assert sum(len(c["input"]) >= 8 for c in support) / len(support) > 0.9
    assert 20_000 <= sum(sum(c["input"]) for c in support) / len(support) <= 60_000
    assert sum(sum(c["cached"]) for c in support) > 0.7 * sum(sum(c["input"]) for c in support)
    assert 1_000 <= sum(sum(c["output"]) for c in support) / len(support) <= 3_000
    coding, research = mean_tokens("coding.change"), mean_tokens("research.report")
    assert 100_000 <= coding <= 1_000_000
    assert mean_tokens("support.ticket") < research < coding


def _payoff(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("payoff")), *args]
    return subprocess.run(command, capture_output=True, text=True)


def test_clean_errors_instead_of_tracebacks(tmp_path: Path) -> None:
    missing = _payoff("--db", str(tmp_path / "typo.db"), "tasks")
    assert missing.returncode == 2 and "no ledger at" in missing.stderr
    assert not (tmp_path / "typo.db").exists()
    bad_month = _payoff("demo", "--db", str(tmp_path / "d.db"), "--month", "2026-13")
    assert bad_month.returncode == 2 and "YYYY-MM" in bad_month.stderr
    prices = tmp_path / "prices.yaml"
    prices.write_text("prices: [ {provider: a\n")
    malformed = _payoff("--prices", str(prices), "--db", str(tmp_path / "l.db"), "ingest", "-")
    assert malformed.returncode == 2 and "price overrides" in malformed.stderr
    for result in (missing, bad_month, malformed):
        assert "Traceback" not in result.stderr


def test_a_task_with_no_priced_step_has_an_unknown_cost(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    record = usage("e1", task="t1", provider="self-hosted", model="mystery")
    _, stdout, _ = run("--db", str(db), "ingest", "-", input=jsonl(record))
    assert "1 accepted steps could not be priced" in stdout
    _, stdout, _ = run("--db", str(db), "tasks", "--json")
    (task,) = json.loads(stdout)
    costs = (task["cost_usd"], task["cost_visible_usd"], task["cost_hidden_usd"])
    assert costs == (None, None, None) and task["unpriced_steps"] == 1


def test_python_dash_m_payoff_runs_the_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "payoff", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Meter AI work in tokens" in done.stdout
