"""Customers, subscriptions and plans read from the command line; `subscribe` refuses an
unregistered customer unless told `--create`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factories import REPO
from payoff.cli import app
from payoff.cli.billing import charge_cells
from payoff.service.access import CustomerNotFound

runner = CliRunner()
HYBRID = REPO / "examples" / "plans" / "hybrid.yaml"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    ledger = str(tmp_path / "l.db")
    run("plans", "apply", str(HYBRID), "--db", ledger)
    run("customers", "add", "acme", "--name", "Acme Corp", "--db", ledger)
    run("subscribe", "acme", "hybrid", "--from", "2026-01-01", "--db", ledger)
    return ledger


def test_subscribe_refuses_an_unknown_customer(db: str) -> None:
    with pytest.raises(CustomerNotFound) as refused:
        run("subscribe", "acmee", "hybrid", "--from", "2026-12-01", "--db", db)
    assert "payoff customers add acmee" in str(refused.value)
    assert "--create" in str(refused.value)
    _, stdout, _ = run("customers", "list", "--json", "--db", db)
    assert [c["id"] for c in json.loads(stdout)] == ["acme"]
    _, stdout, _ = run("subscriptions", "list", "--json", "--db", db)
    assert [s["customer"] for s in json.loads(stdout)] == ["acme"]


def test_subscribe_with_create_registers_the_customer(db: str) -> None:
    code, _, _ = run("subscribe", "globex", "hybrid", "--from", "2999-01-01", "--create",
                     "--db", db)  # fmt: skip
    assert code == 0
    _, stdout, _ = run("customers", "list", "--json", "--db", db)
    rows = json.loads(stdout)
    assert [(c["id"], c["name"]) for c in rows] == [("acme", "Acme Corp"), ("globex", None)]
    assert rows[0]["plan"] == "hybrid@1"
    assert rows[1]["plan"] is None  # its subscription has not started
    assert rows[0]["created_at"].endswith("Z")


def test_customers_show_has_subscriptions_and_invoices(db: str) -> None:
    run("subscribe", "acme", "hybrid@1", "--from", "2026-03-01", "--db", db)
    run("invoice", "run", "--period", "2026-01", "--db", db)
    _, stdout, _ = run("customers", "show", "acme", "--json", "--db", db)
    shown = json.loads(stdout)
    assert (shown["id"], shown["name"], shown["plan"]) == ("acme", "Acme Corp", "hybrid@1")
    assert shown["subscriptions"] == [
        {"customer": "acme", "plan": "hybrid@1", "starts_at": "2026-01-01T00:00:00Z",
         "ends_at": "2026-03-01T00:00:00Z"},
        {"customer": "acme", "plan": "hybrid@1", "starts_at": "2026-03-01T00:00:00Z",
         "ends_at": None},
    ]  # fmt: skip
    (invoice,) = shown["invoices"]
    assert (invoice["period"], invoice["status"], invoice["currency"]) == (
        "2026-01",
        "draft",
        "USD",
    )
    assert invoice["total"] == "499.00"  # the platform fee, above the 200.00 minimum
    code, stdout, _ = run("customers", "show", "acme", "--db", db)
    assert code == 0 and "Acme Corp" in stdout and "2026-01" in stdout
    with pytest.raises(CustomerNotFound):
        run("customers", "show", "nobody", "--db", db)


def test_subscriptions_list_by_customer(db: str) -> None:
    run("subscribe", "globex", "hybrid", "--from", "2026-02-01", "--create", "--db", db)
    _, stdout, _ = run("subscriptions", "list", "--customer", "globex", "--json", "--db", db)
    assert [(s["customer"], s["starts_at"]) for s in json.loads(stdout)] == [
        ("globex", "2026-02-01T00:00:00Z")
    ]
    code, stdout, _ = run("subscriptions", "list", "--db", db)
    assert code == 0 and "acme" in stdout and "globex" in stdout


def test_plans_show_reads_its_charges(db: str) -> None:
    _, stdout, _ = run("plans", "show", "hybrid", "--json", "--db", db)
    shown = json.loads(stdout)
    assert (shown["id"], shown["version"], shown["currency"]) == ("hybrid", 1, "USD")
    assert shown["charges"] == ["platform", "token-overage", "tickets"]
    assert shown["body"]["minimum"] == "200.00"
    _, listed, _ = run("plans", "list", "--json", "--db", db)
    assert json.loads(listed) == [shown]  # one row shape for a plan, listed or shown
    code, stdout, _ = run("plans", "show", "hybrid@1", "--db", db)
    assert code == 0 and "minimum 200.00" in stdout
    assert all(name in stdout for name in shown["charges"])
    # The table folds long text cells; what it shows of each charge is charge_cells'.
    described = " | ".join(" ".join(charge_cells(c)) for c in shown["body"]["charges"])
    for text in ("499.00 a period", "up to 50 at 3.00", "5,000,000",
                 "completed support.ticket", "above at 0.05"):  # fmt: skip
        assert text in described, text
