"""Plans, subscriptions and invoices, end to end on a demo ledger; late usage; lifecycle."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from typer.testing import CliRunner

from factories import REPO
from payoff.cli import app
from payoff.core.canonical import DocumentError
from payoff.core.periods import iso_from_us
from payoff.demo import generate
from payoff.service import ingest_lines, invoices, plans
from payoff.store import open_store
from payoff.store.billing import PlanConflict
from payoff.store.protocol import Store

PLANS = REPO / "examples" / "plans"
runner = CliRunner()


@pytest.fixture
def ledger(tmp_path: Path) -> Store:
    """A demo November on three plans; `ledger.as_of_us` is a time after it was ingested."""
    store = open_store(tmp_path / "ledger.db")
    # Without attestations: verification is the outcomes issue's, and these plans verify none.
    records = [
        r
        for r in generate(seed=3, customers=4, month="2026-11")
        if r.get("record") != "attestation"
    ]
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1)]
    assert ingest_lines(store, lines).clean
    for name in ("cost-plus", "per-outcome", "hybrid"):
        plans.apply_plan(store, PLANS / f"{name}.yaml")
    plans.subscribe(store, "acme", "hybrid", dt.date(2026, 11, 1))
    plans.subscribe(store, "globex", "cost-plus@1", dt.date(2026, 11, 1))
    plans.subscribe(store, "initech", "per-outcome", dt.date(2026, 11, 1))
    plans.subscribe(store, "umbrella", "hybrid", dt.date(2026, 11, 16))
    store.as_of_us = invoices.now_us()  # type: ignore[attr-defined]
    return store


def _sql(store: Store, query: str, *args: Any) -> Any:
    path = store.path  # type: ignore[attr-defined]
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchone()[0]


def _fee(document: dict[str, Any], charge: str) -> dict[str, Any]:
    return next(f for f in document["fees"] if f["charge"] == charge and "late_period" not in f)


def test_invoices_for_three_kinds_of_plan(ledger: Store) -> None:
    documents = {
        d["customer"]: d for d in invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us)
    }
    assert set(documents) == {"acme", "globex", "initech", "umbrella"}
    for document in documents.values():
        fees = sum(Decimal(f["amount"]) for f in document["fees"])
        assert Decimal(document["subtotal"]) == fees
        expected = (
            fees + Decimal(document["minimum_true_up"]) - Decimal(document["maximum_discount"])
        )
        assert Decimal(document["total"]) == expected
        assert document["as_of"] == iso_from_us(ledger.as_of_us)  # type: ignore[attr-defined]
        assert document["inputs_digest"].startswith("sha256:")

    # Cost-plus: the provider cost of globex's November steps, from the ledger, times 1.30.
    cost = Decimal(_sql(ledger, "SELECT sum(cost_nanousd) FROM events WHERE customer = 'globex'"))
    passthrough = _fee(documents["globex"], "usage")
    assert Decimal(passthrough["precise_amount"]) == cost / 10**9 * Decimal("1.30")
    assert passthrough["amount"] == str((cost / 10**9 * Decimal("1.30")).quantize(Decimal("0.01")))

    # Per outcome: one fee unit per ticket.resolved claim of initech.
    resolved = _sql(
        ledger,
        "SELECT count(*) FROM outcomes WHERE customer = 'initech' AND type = 'ticket.resolved'",
    )
    assert _fee(documents["initech"], "resolved-tickets")["units"] == str(resolved)

    # Hybrid from the 16th: half of November's 30 days of the subscription.
    platform = _fee(documents["umbrella"], "platform")
    assert (platform["units"], platform["amount"]) == ("0.5", "249.50")
    # A hybrid invoice never falls under its minimum.
    assert Decimal(documents["acme"]["total"]) >= Decimal("200.00")


def test_the_same_inputs_give_the_same_invoice_byte_for_byte(ledger: Store) -> None:
    first = invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us)
    again = invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us)
    assert [invoices.invoice_json(d) for d in first] == [invoices.invoice_json(d) for d in again]
    assert len(ledger.list_invoices(period="2026-11")) == 4  # drafts replaced, not added


def test_finalized_invoices_are_kept_and_late_usage_is_billed_once(ledger: Store) -> None:
    for document in invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us):
        invoices.act_on_invoice(ledger, document["id"], "finalize")
    assert invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us + 1) == []

    # Usage of November that arrives after November was billed.
    late = [
        {"id": f"late-{i}", "time": "2026-11-20T12:00:00Z", "customer": "globex",
         "task": f"late-task-{i}", "provider": "openai", "model": "gpt-4o",
         "input_tokens": 1_000_000, "output_tokens": 100_000}
        for i in range(3)
    ]  # fmt: skip
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(late, start=1)]
    assert ingest_lines(ledger, lines).counts()["accepted"] == 3
    # gpt-4o: 1M input at 2.50 + 100k output at 10.00 = 3.50 USD a call; x 3 x 1.30.
    (december,) = [d for d in invoices.run_invoices(ledger, "2026-12") if d["customer"] == "globex"]
    (line,) = [f for f in december["fees"] if f.get("late_period") == "2026-11"]
    assert (line["charge"], line["amount"]) == ("usage", "13.65")
    assert Decimal(line["units"]) == Decimal("10.5")  # provider cost, USD
    invoices.act_on_invoice(ledger, december["id"], "finalize")

    # January: nothing new arrived, so November's late usage is not billed again.
    (january,) = [d for d in invoices.run_invoices(ledger, "2027-01") if d["customer"] == "globex"]
    assert not [f for f in january["fees"] if "late_period" in f]


def test_lifecycle_is_a_table(ledger: Store) -> None:
    (document, *_) = invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us)
    invoice = document["id"]
    with pytest.raises(plans.BillingError, match="cannot void an invoice that is draft"):
        invoices.act_on_invoice(ledger, invoice, "void")
    assert invoices.act_on_invoice(ledger, invoice, "finalize")["status"] == "finalized"
    with pytest.raises(plans.BillingError, match="cannot finalize an invoice that is finalized"):
        invoices.act_on_invoice(ledger, invoice, "finalize")
    assert invoices.act_on_invoice(ledger, invoice, "pay")["status"] == "paid"
    with pytest.raises(plans.BillingError, match="allowed: none"):
        invoices.act_on_invoice(ledger, invoice, "void")


def test_a_voided_invoice_makes_way_for_a_new_one(ledger: Store) -> None:
    first = invoices.run_invoices(ledger, "2026-11", customer="acme", as_of_us=ledger.as_of_us)[0]
    invoices.act_on_invoice(ledger, first["id"], "finalize")
    invoices.act_on_invoice(ledger, first["id"], "void")
    second = invoices.run_invoices(ledger, "2026-11", customer="acme", as_of_us=ledger.as_of_us)[0]
    assert (first["id"], second["id"]) == ("acme-2026-11", "acme-2026-11-2")


def test_plans_are_immutable(ledger: Store, tmp_path: Path) -> None:
    _, created, _ = plans.apply_plan(ledger, PLANS / "hybrid.yaml")
    assert not created
    changed = tmp_path / "hybrid.yaml"
    changed.write_text((PLANS / "hybrid.yaml").read_text().replace("499.00", "599.00"))
    with pytest.raises(PlanConflict, match="apply it as version 2"):
        plans.apply_plan(ledger, changed)
    bumped = tmp_path / "hybrid2.yaml"
    bumped.write_text(changed.read_text().replace("version: 1", "version: 2"))
    assert plans.apply_plan(ledger, bumped)[1]


def test_invalid_plans_name_the_charge_and_field(tmp_path: Path) -> None:
    from payoff.plan_files import PlanError, load_plan

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "id: p\nversion: 1\ncurrency: USD\ncharges:\n"
        "  - {name: t, type: task, task_type: x, model: graduated, tiers: [{up_to: 10, "
        "unit_price: '1'}, {up_to: 5, unit_price: '1'}, {unit_price: '1'}]}\n"
        "  - {name: o, type: outcome, outcome: y, model: per_unit, unit_price: '-1'}\n"
    )
    with pytest.raises(PlanError) as caught:
        load_plan(bad)
    assert "charge 't': tiers[1].up_to: tiers must ascend" in str(caught.value)
    assert "charge 'o': unit_price: must be a finite, non-negative number" in str(caught.value)
    bad.write_text("id: p\nversion: 1\ncurrency: XYZ\ncharges: []\nextra: 1\n")
    with pytest.raises(PlanError, match="unknown field `extra`"):
        load_plan(bad)


def test_quote_is_a_price_calculator() -> None:
    result = runner.invoke(app, [
        "quote", str(PLANS / "hybrid.yaml"), "--units", "token-overage=65000000",
        "--units", "tickets=1200", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    fees = {f["charge"]: f for f in document["fees"]}
    # 60M billable tokens: 50 at 3.00 + 10 at 2.00 = 170.00; 1,200 tickets: 100 + 10 + 20.
    assert fees["token-overage"]["amount"] == "170.00"
    assert fees["tickets"]["amount"] == "130.00"
    assert fees["platform"]["amount"] == "499.00"
    assert document["total"] == "799.00"
    assert set(document) == {"fees", "subtotal", "minimum_true_up", "maximum_discount", "total"}


def test_invoice_commands_and_exports(ledger: Store, tmp_path: Path) -> None:
    db = str(ledger.path)  # type: ignore[attr-defined]
    result = runner.invoke(
        app,
        [
            "--db",
            db,
            "invoice",
            "run",
            "--period",
            "2026-11",
            "--as-of",
            iso_from_us(ledger.as_of_us),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    documents = json.loads(result.stdout)
    keys = {
        "id",
        "customer",
        "period",
        "status",
        "currency",
        "plan",
        "fees",
        "subtotal",
        "minimum_true_up",
        "maximum_discount",
        "total",
    }
    assert all(keys <= set(d) for d in documents)
    invoice = documents[0]["id"]
    assert runner.invoke(app, ["--db", db, "invoice", "finalize", invoice]).exit_code == 0
    shown = json.loads(
        runner.invoke(app, ["--db", db, "invoice", "show", invoice, "--json"]).stdout
    )
    assert shown["status"] == "finalized"
    csv_text = runner.invoke(
        app, ["--db", db, "invoice", "export", invoice, "--format", "csv"]
    ).stdout
    assert csv_text.splitlines()[0].startswith("invoice,line,late_period,units,amount")
    page = tmp_path / "invoice.html"
    runner.invoke(
        app, ["--db", db, "invoice", "export", invoice, "--format", "html", "--output", str(page)]
    )
    text = page.read_text()
    assert f"Reference {invoice}" in text and "http" not in text and "<script" not in text


def test_an_as_of_time_in_the_future_is_refused(ledger: Store) -> None:
    with pytest.raises(plans.BillingError, match="in the future"):
        invoices.run_invoices(ledger, "2026-11", as_of_us=invoices.now_us() + 60 * 10**6)


def test_a_reasoning_budget_shows_what_the_provider_absorbed(ledger: Store) -> None:
    (acme,) = invoices.run_invoices(ledger, "2026-11", customer="acme", as_of_us=ledger.as_of_us)  # type: ignore[attr-defined]
    overage = _fee(acme, "token-overage")
    # Per task, hidden tokens above 20,000 are not billed: recompute that from the ledger.
    absorbed = _sql(
        ledger,
        """
        SELECT coalesce(sum(max(hidden - 20000, 0)), 0) FROM (
          SELECT sum(input_tokens + output_tokens)
                 - sum(CASE WHEN visible THEN output_tokens - reasoning_tokens ELSE 0 END) AS hidden
          FROM events WHERE customer = 'acme' AND task IS NOT NULL GROUP BY task)""",
    )
    assert overage["absorbed_hidden_tokens"] == absorbed > 0
    counted = _sql(
        ledger, "SELECT sum(input_tokens + output_tokens) FROM events WHERE customer = 'acme'"
    )
    assert Decimal(overage["units"]) == counted - absorbed


def test_a_stored_invoice_whose_total_was_edited_is_refused_on_load(ledger: Store) -> None:
    (document, *_) = invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us)
    stored = _sql(ledger, "SELECT document FROM invoices WHERE id = ?", document["id"])
    edited = stored.replace(f'"total":"{document["total"]}"', '"total":"0.01"')
    assert edited != stored
    with sqlite3.connect(ledger.path) as conn:  # type: ignore[attr-defined]
        conn.execute("UPDATE invoices SET document = ? WHERE id = ?", (edited, document["id"]))
    with pytest.raises(DocumentError, match="total"):
        invoices.invoice_document(ledger, document["id"])


def test_an_invoice_rated_with_another_plan_body_is_refused(ledger: Store) -> None:
    (document, *_) = invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us)
    plan_id, version = document["plan"].split("@")
    with sqlite3.connect(ledger.path) as conn:  # type: ignore[attr-defined]
        conn.execute(
            "UPDATE plans SET digest = 'sha256:0' WHERE id = ? AND version = ?",
            (plan_id, int(version)),
        )
    with pytest.raises(DocumentError, match="not the version it was rated with"):
        invoices.act_on_invoice(ledger, document["id"], "finalize")
    with pytest.raises(DocumentError, match="not the version it was rated with"):
        invoices.list_invoices(ledger, None, None, None)
    with pytest.raises(DocumentError, match="not the version it was rated with"):
        invoices.run_invoices(ledger, "2026-11", as_of_us=ledger.as_of_us)


def test_the_cli_and_the_service_list_plans_in_one_shape(ledger: Store) -> None:
    listed = plans.list_plans(ledger)
    assert [(p["id"], p["version"]) for p in listed] == [
        ("cost-plus", 1),
        ("hybrid", 1),
        ("per-outcome", 1),
    ]
    hybrid = listed[1]
    assert hybrid["charges"] == [c["name"] for c in hybrid["body"]["charges"]]
    ledger.close()
    result = runner.invoke(app, ["--db", str(ledger.path), "plans", "list", "--json"])  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == listed


def test_adding_a_customer_twice_renames_it(ledger: Store) -> None:
    assert plans.add_customer(ledger, "hooli", "Hooli") is True
    assert plans.add_customer(ledger, "hooli", "Hooli Inc.") is False
    assert _sql(ledger, "SELECT name FROM customers WHERE id = 'hooli'") == "Hooli Inc."
