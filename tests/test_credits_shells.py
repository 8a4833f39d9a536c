"""Credits from the command line (a real `payoff` process, and the runner) and over HTTP:
grants, balances and ledgers, with the admin key and a customer key reading its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api_support import Keys, prepare_ledger
from payoff.api import ServerConfig, create_app
from payoff.cli import app
from payoff.core.credits import CreditError

runner = CliRunner()
PAYOFF = str(Path(sys.executable).with_name("payoff"))


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[str, Keys]:
    """Customers acme and globex on a USD plan, with keys."""
    path = tmp_path / "l.db"
    return str(path), prepare_ledger(path)


def test_grant_balance_and_ledger_from_the_command_line(ledger: tuple[str, Keys]) -> None:
    db, _ = ledger
    out = run("credits", "grant", "acme", "25.50", "--id", "welcome", "--promo",
              "--priority", "1", "--expires", "2999-01-01", "--db", db)  # fmt: skip
    assert "granted 25.50 USD to acme as welcome" in out
    run("credits", "grant", "acme", "25.50", "--id", "welcome", "--promo", "--priority", "1",
        "--expires", "2999-01-01", "--db", db)  # fmt: skip
    run("credits", "grant", "acme", "10", "--id", "later", "--effective", "2999-01-01",
        "--db", db)  # fmt: skip
    (row, later) = json.loads(run("credits", "ledger", "acme", "--json", "--db", db))
    assert (row["id"], row["amount"], row["promo"], row["priority"]) == (
        "welcome",
        "25.50",
        True,
        1,
    )
    assert row["expires_at"] == "2999-01-01T00:00:00Z"
    assert (later["amount"], later["balance"]) == ("10.00", "35.50")
    assert "welcome" in run("credits", "ledger", "acme", "--db", db)
    # A real process, as a script would run it.
    shown = subprocess.run(
        [PAYOFF, "credits", "balance", "acme", "--json", "--db", db],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(shown.stdout) == {
        "customer": "acme",
        "currency": "USD",
        "balance": "35.50",
        "pending": "10.00",
        "available": "25.50",
    }


def test_the_command_line_refuses_what_it_cannot_grant_exactly(ledger: tuple[str, Keys]) -> None:
    db, _ = ledger
    with pytest.raises(CreditError, match="more than 2 decimal places"):
        run("credits", "grant", "acme", "0.001", "--db", db)
    with pytest.raises(CreditError, match="--expires 'soon' is not a day"):
        run("credits", "grant", "acme", "1", "--expires", "soon", "--db", db)


@pytest.fixture
def client(ledger: tuple[str, Keys]) -> Iterator[TestClient]:
    config = ServerConfig(ledger[0], max_records=5, max_body_bytes=4096, builders=0)
    with TestClient(create_app(config)) as test_client:
        yield test_client


def test_credits_over_http(client: TestClient, ledger: tuple[str, Keys]) -> None:
    _, keys = ledger
    admin, acme = keys.header(keys.admin), keys.header(keys.acme)
    body = {"id": "g1", "amount": "12.34", "priority": 2, "expires": "2999-01-01"}
    granted = client.post("/v1/customers/acme/credits", json=body, headers=admin)
    assert granted.status_code == 200, granted.text
    assert (granted.json()["amount"], granted.json()["kind"]) == ("12.34", "grant")
    again = client.post("/v1/customers/acme/credits", json=body, headers=admin)
    assert again.json() == granted.json()
    other = client.post("/v1/customers/acme/credits", json={**body, "amount": "1"}, headers=admin)
    assert other.status_code == 409 and "g1" in other.text
    inexact = client.post("/v1/customers/acme/credits", json={"amount": "1.001"}, headers=admin)
    assert inexact.status_code == 422 and "decimal places" in inexact.text
    refused = client.post("/v1/customers/acme/credits", json={"amount": "1"}, headers=acme)
    assert refused.status_code == 403
    # A customer key reads its own wallet, and no other.
    balance = client.get("/v1/customers/acme/credits/balance", headers=acme)
    assert balance.json() == {
        "customer": "acme",
        "currency": "USD",
        "balance": "12.34",
        "pending": "0.00",
        "available": "12.34",
    }
    assert client.get("/v1/customers/globex/credits/balance", headers=acme).status_code == 404
    assert client.get("/v1/customers/nobody/credits/balance", headers=admin).status_code == 404
    ledger_page = client.get("/v1/customers/acme/credits/ledger", headers=acme).json()
    assert [(e["id"], e["balance"]) for e in ledger_page["items"]] == [("g1", "12.34")]


def test_the_live_balance_over_http(client: TestClient, ledger: tuple[str, Keys]) -> None:
    _, keys = ledger
    admin, acme = keys.header(keys.admin), keys.header(keys.acme)
    client.post("/v1/customers/acme/credits", json={"amount": "3.00"}, headers=admin)
    shown = client.get("/v1/customers/acme/balance", headers=acme)
    assert shown.status_code == 200, shown.text
    assert (shown.json()["credits_available"], shown.json()["currency"]) == ("3.00", "USD")
    assert client.get("/v1/customers/globex/balance", headers=acme).status_code == 404
