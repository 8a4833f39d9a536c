"""Invoices and credit notes as documents a customer accepts: issuer, customer, number,
dates, lines in words, unit prices, credits, tax and the amount due, in HTML and PDF."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import sqlite3
import subprocess
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api_support import prepare_ledger
from payoff.api import ServerConfig, create_app
from payoff.cli import app
from payoff.core.printable import Issuer, IssuerError, describe, tier_note
from payoff.invoice_print import day, printable_html, printable_pdf
from payoff.plan_files import parse_plan
from payoff.service import access, ingest_lines, invoices, plans
from payoff.service.issuer import load_issuer
from payoff.store import open_store
from payoff.store.protocol import Store

ROOT = Path(__file__).resolve().parent.parent
ISSUER_FILE = ROOT / "examples" / "issuer" / "issuer.toml"
PLAN = """\
id: docs
version: 1
currency: USD
charges:
  - {name: platform, type: subscription, amount: '99.00', description: Platform subscription}
  - name: input
    type: tokens
    classes: [input]
    model: volume
    tiers: [{up_to: 1000, unit_price: '0.30'}, {up_to: null, unit_price: '0.10'}]
  - name: tickets
    type: task
    task_type: support.ticket
    model: graduated
    tiers: [{up_to: 2, unit_price: '1.00'}, {up_to: null, unit_price: '0.50'}]
    description: Resolved support tickets
"""


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def text_of(page: str) -> str:
    """The words a reader sees, whitespace collapsed."""
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


def step(id: str, time: str, tokens: int) -> bytes:
    record = {"id": id, "time": time, "customer": "acme", "provider": "openai"}
    record |= {"model": "gpt-4o", "input_tokens": tokens, "output_tokens": 0}
    return msgspec.json.encode(record)


def tickets(n: int, day_of_month: int) -> list[bytes]:
    """`n` support tickets completed in October."""
    time = f"2026-10-{day_of_month:02d}T10:00:00Z"
    return [
        msgspec.json.encode(
            {"record": "task", "id": f"t{day_of_month}-{i}", "customer": "acme", "time": time}
            | {"type": "support.ticket", "status": "completed"}
        )
        for i in range(n)
    ]


def ingest(store: Store, *lines: bytes) -> None:
    report = ingest_lines(store, list(enumerate(lines, start=1)), workers=0)
    assert report.clean, report.problems


@pytest.fixture
def billed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """October finalized (399.00 + 3 tickets), then late usage in October that drops the
    volume price: November's invoice credits October, and a credit note is issued."""
    monkeypatch.setenv("PAYOFF_ISSUER", str(ISSUER_FILE))
    store = open_store(tmp_path / "ledger.db")
    plan_path = tmp_path / "docs.yaml"
    plan_path.write_text(PLAN)
    plans.apply_plan(store, plan_path)
    plans.add_customer(
        store,
        "acme",
        "Acme Corporation",
        address="100 Industrial Way\nSpringfield, OR 97477",
        email="ap@acme.test",
        tax_id="US 12-3456789",
    )
    plans.subscribe(store, "acme", "docs", dt.date(2026, 10, 1))
    ingest(store, step("e1", "2026-10-05T00:00:00Z", 1000), *tickets(3, 7))
    invoices.run_invoices(store, "2026-10")
    invoices.act_on_invoice(store, "acme-2026-10", "finalize")
    ingest(store, step("e2", "2026-10-06T00:00:00Z", 1), step("e3", "2026-11-03T00:00:00Z", 2000))
    invoices.run_invoices(store, "2026-11")
    invoices.act_on_invoice(store, "acme-2026-11", "finalize")
    invoices.run_invoices(store, "2026-12")  # a draft
    return store


def issued(store: Store, invoice_id: str) -> tuple[dt.date, dt.date]:
    document = invoices.invoice_document(store, invoice_id)
    return dt.date.fromisoformat(document["issued_on"]), dt.date.fromisoformat(document["due_on"])


def test_a_finalized_invoice_names_issuer_customer_number_dates_lines_and_tax(
    billed: Store,
) -> None:
    october = text_of(printable_html(invoices.printable_document(billed, "acme-2026-10")))
    issued_on, due_on = issued(billed, "acme-2026-10")
    assert due_on == issued_on + dt.timedelta(days=30)
    year = issued_on.year
    for expected in (
        "Invoice",
        "Example AI Ltd",
        "2 Harbour Exchange Square",
        "Tax ID GB 123 4567 89",
        "Acme Corporation",
        "100 Industrial Way Springfield, OR 97477",
        "Tax ID US 12-3456789",
        f"INV-{year}-000001",
        f"Issue date {day(issued_on)}",
        f"Due date {day(due_on)}",
        "Period 1 October 2026 to 31 October 2026",
        # description, quantity, unit price, amount
        "Platform subscription 1 month 99.00 per month 99.00 USD",
        "Input tokens (uncached) all 1,000 at 0.30 (tier up to 1,000) 1,000 tokens tiered "
        "(volume) 300.00 USD",
        "Resolved support tickets 2 at 1.00; 1 at 0.50 3 tasks tiered (graduated) 2.50 USD",
        "Subtotal 401.50 USD",
        "VAT (20 %) 80.30 USD",
        "Amount due 481.80 USD",
        "Payment terms: 30 days",
    ):
        assert expected in october, expected
    assert "DRAFT" not in october
    # issued against it by November, and deducted there
    assert f"Credit note CN-{year}-000001 {day(issued_on)} INV-{year}-000002 -239.88 USD" in october
    assert "Each credit note is deducted once, on the invoice named beside it" in october


def test_an_invoice_shows_credits_for_earlier_periods_before_tax(billed: Store) -> None:
    november = text_of(printable_html(invoices.printable_document(billed, "acme-2026-11")))
    year = issued(billed, "acme-2026-11")[0].year
    for expected in (
        f"INV-{year}-000002",
        "Input tokens (uncached) all 2,000 at 0.10 (tier above 1,000) 2,000 tokens tiered "
        "(volume) 200.00 USD",
        "Credits for earlier periods",
        # the quantity is what arrived late; the tier is the one the whole period falls in now
        "Input tokens (uncached) late usage of 2026-10; the period now: all 1,001 at 0.10 "
        f"(tier above 1,000); see credit note CN-{year}-000001 1 token tiered (volume) "
        "-199.90 USD",
        "Each credit is deducted here, once.",
        "Subtotal 299.00 USD",
        "Credits for earlier periods -199.90 USD",
        "Total before tax 99.10 USD",
        "VAT (20 %) 19.82 USD",
        "Amount due 118.92 USD",
    ):
        assert expected in november, expected


def test_a_credit_note_is_its_own_document_naming_the_invoice_it_corrects(
    billed: Store,
) -> None:
    (note,) = invoices.invoice_document(billed, "acme-2026-10")["credit_notes"]
    document = invoices.printable_document(billed, note["id"])
    text = text_of(printable_html(document))
    issued_on, _ = issued(billed, "acme-2026-10")
    year = issued_on.year
    assert document.issued_on is not None
    for expected in (
        "Credit note",
        f"CN-{year}-000001",
        f"Corrects invoice INV-{year}-000001",
        "Credit to Acme Corporation",
        f"Issue date {day(document.issued_on)}",
        "Example AI Ltd",
        "Acme Corporation",
        f"corrects invoice INV-{year}-000001 of {day(issued_on)} (481.80 USD)",
        f"Deducted on invoice INV-{year}-000002",
        "Input tokens (uncached) late usage of 2026-10; the period now: all 1,001 at 0.10 "
        "(tier above 1,000) 1 token tiered (volume) -199.90 USD",
        f"It is deducted once, on invoice INV-{year}-000002 , under “Credits for earlier periods”",
        "Nothing to pay.",
        "Subtotal -199.90 USD",
        "VAT (20 %) -39.98 USD",
        "Total credited -239.88 USD",
    ):
        assert expected in text, expected
    assert "Due date" not in text and "DRAFT" not in text


def test_a_draft_is_marked_and_has_no_number_or_dates(billed: Store) -> None:
    text = text_of(printable_html(invoices.printable_document(billed, "acme-2026-12")))
    assert "DRAFT — not a request for payment" in text
    assert "Number DRAFT (numbered when finalized)" in text
    assert "INV-" not in text and "Issue date" not in text and "Due date" not in text
    assert "Example AI Ltd" in text  # the issuer configured now


def test_the_html_page_stands_alone(billed: Store) -> None:
    page = printable_html(invoices.printable_document(billed, "acme-2026-10"))
    assert 'src="data:image/svg+xml;base64,' in page  # the logo, inlined
    assert not re.search(r"""(?:src|href)=["']?(?:https?:|//|/)""", page)
    assert "@import" not in page and "url(" not in page and "<script" not in page


def test_numbers_are_sequential_given_once_and_kept_when_voided(billed: Store) -> None:
    year = issued(billed, "acme-2026-11")[0].year
    invoices.act_on_invoice(billed, "acme-2026-11", "void")
    invoices.run_invoices(billed, "2026-11")
    invoices.act_on_invoice(billed, "acme-2026-11-2", "finalize")
    assert invoices.invoice_document(billed, "acme-2026-11")["number"] == f"INV-{year}-000002"
    assert invoices.invoice_document(billed, "acme-2026-11-2")["number"] == f"INV-{year}-000003"
    assert "number" not in invoices.invoice_document(billed, "acme-2026-12")  # a draft


def test_a_number_cannot_be_stored_twice(billed: Store, tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "ledger.db") as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("UPDATE invoices SET number = 'INV-2026-000001' WHERE id = 'acme-2026-12'")


def test_the_issuer_kept_on_a_finalized_invoice_does_not_follow_the_file(
    billed: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.toml"
    other.write_text('name = "Renamed Ltd"\ntax_rate = "0.10"\n')
    monkeypatch.setenv("PAYOFF_ISSUER", str(other))
    finalized = text_of(printable_html(invoices.printable_document(billed, "acme-2026-10")))
    draft = text_of(printable_html(invoices.printable_document(billed, "acme-2026-12")))
    assert "Example AI Ltd" in finalized and "VAT (20 %) 80.30 USD" in finalized
    assert "Renamed Ltd" in draft and "Tax (10 %)" in draft


@pytest.mark.slow  # WeasyPrint lays out two pages, and pdftotext runs as a process
def test_the_pdf_holds_the_same_fields(billed: Store) -> None:
    if shutil.which("pdftotext") is None:
        pytest.fail("pdftotext is missing: apt-get install poppler-utils (.ci/run does)")
    year = issued(billed, "acme-2026-10")[0].year
    for document_id, expected in (
        ("acme-2026-10", [f"INV-{year}-000001", "Example AI Ltd", "Acme Corporation"]),
        ("acme-2026-10", ["Resolved support tickets", "VAT (20 %)", "481.80 USD"]),
        ("acme-2026-12", ["DRAFT"]),
    ):
        pdf = printable_pdf(printable_html(invoices.printable_document(billed, document_id)))
        assert pdf.startswith(b"%PDF-")
        words = subprocess.run(
            ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
        ).stdout.decode()
        flat = " ".join(words.split())
        for field in expected:
            assert field in flat, field
    (note,) = invoices.invoice_document(billed, "acme-2026-10")["credit_notes"]
    pdf = printable_pdf(printable_html(invoices.printable_document(billed, note["id"])))
    words = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True)
    flat = " ".join(words.stdout.decode().split())
    assert f"CN-{year}-000001" in flat and "-239.88 USD" in flat


def test_the_cli_adds_contact_details_and_exports_html(billed: Store, tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "ledger.db")
    result = runner.invoke(
        app,
        ["--db", db, "customers", "add", "acme", "--address", r"1 New Road\nNewtown"],
    )
    assert result.exit_code == 0, result.output
    page = tmp_path / "out.html"
    args = ["--db", db, "invoice", "export", "acme-2026-12", "--format", "html"]
    result = runner.invoke(app, [*args, "--output", str(page)])
    assert result.exit_code == 0, result.output
    text = text_of(page.read_text())
    assert "1 New Road Newtown" in text and "Acme Corporation" in text  # the name is kept
    json_args = ["--db", db, "invoice", "export", "acme-2026-10", "--format", "json"]
    exported: dict[str, Any] = msgspec.json.decode(runner.invoke(app, json_args).stdout)
    assert exported["total"] == "401.50" and exported["status"] == "finalized"


def test_descriptions_come_from_the_plan_or_from_the_charge() -> None:
    plan, body = parse_plan(PLAN)
    assert [describe(c) for c in plan.charges] == [
        "Platform subscription",
        "Input tokens (uncached)",
        "Resolved support tickets",
    ]
    assert "description" not in body["charges"][1]  # bodies without one keep their digest


def test_issuer_settings_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "issuer.toml"
    path.write_text('name = "X"\ntax_rate = 0.2\n')
    assert load_issuer(path).tax_rate == Decimal("0.2")  # read exactly, never as a float
    for bad, field in (
        ('name = "X"\ntax_rate = "1.5"\n', "tax_rate"),
        ('name = "X"\nnumber_prefix = "IN%V"\n', "number_prefix"),
        ('name = "X"\ncolour = "red"\n', "unknown settings colour"),
        ("tax_rate = 0.1\n", "name"),
    ):
        path.write_text(bad)
        with pytest.raises(IssuerError, match=field):
            load_issuer(path)
    assert Issuer.from_json(Issuer("X", tax_rate=Decimal("0.075")).to_json()).tax_rate == Decimal(
        "0.075"
    )


def test_the_api_takes_contact_details(tmp_path: Path) -> None:
    keys = prepare_ledger(tmp_path / "l.db")
    config = ServerConfig(str(tmp_path / "l.db"), builders=0)
    body = {"id": "acme", "address": "1 Main St\nSpringfield", "tax_id": "DE123"}
    with TestClient(create_app(config)) as client:
        answer = client.post("/v1/customers", json=body, headers=keys.header(keys.admin))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {**body, "name": None, "email": None, "created": False}
    store = open_store(tmp_path / "l.db")
    try:
        found = store.get_customer("acme")
    finally:
        store.close()
    assert found is not None and (found.address, found.tax_id) == (body["address"], "DE123")


def test_tax_and_amount_due_are_shown_wherever_the_invoice_is(
    billed: Store, tmp_path: Path
) -> None:
    """The JSON of `invoice show`, `GET /v1/invoices/ID` and `invoice list` carry the tax
    and amount due the printed document shows; the stored document does not change."""
    db = str(tmp_path / "ledger.db")
    year = issued(billed, "acme-2026-11")[0].year
    shown = invoices.invoice_document(billed, "acme-2026-11")
    assert shown["total"] == "99.10"
    assert shown["tax"] == {"label": "VAT", "rate": "0.20", "amount": "19.82"}
    assert shown["amount_due"] == "118.92"
    assert shown["number"] == f"INV-{year}-000002"
    stored = billed.get_invoice("acme-2026-11")
    assert stored is not None
    assert not {"tax", "amount_due", "number"} & set(msgspec.json.decode(stored.invoice.to_json()))
    runner = CliRunner()
    result = runner.invoke(app, ["--db", db, "invoice", "show", "acme-2026-11", "--json"])
    assert result.exit_code == 0, result.output
    assert msgspec.json.decode(result.stdout) == shown
    admin = access.create_key(billed, "admin")[1]
    with TestClient(create_app(ServerConfig(db, builders=0))) as client:
        answer = client.get(
            "/v1/invoices/acme-2026-11", headers={"Authorization": f"Bearer {admin}"}
        )
        listed = client.get("/v1/invoices", headers={"Authorization": f"Bearer {admin}"})
    assert answer.status_code == 200, answer.text
    assert answer.json() == shown
    rows = {row["id"]: row for row in listed.json()["items"]}
    assert rows["acme-2026-11"]["amount_due"] == "118.92"
    assert rows["acme-2026-12"]["amount_due"] == "118.80"  # a draft: 99.00 and VAT now
    assert "number" not in rows["acme-2026-12"]
    result = runner.invoke(app, ["--db", db, "invoice", "list", "--json"])
    assert msgspec.json.decode(result.stdout) == list(rows.values())


def test_no_tax_is_shown_as_null_and_the_amount_due_is_the_total(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYOFF_ISSUER")
    draft = invoices.invoice_document(billed, "acme-2026-12")
    assert draft["tax"] is None and draft["amount_due"] == draft["total"] == "99.00"


def test_show_and_finalize_print_number_dates_tax_and_amount_due(
    billed: Store, tmp_path: Path
) -> None:
    runner = CliRunner()
    db = str(tmp_path / "ledger.db")
    result = runner.invoke(app, ["--db", db, "invoice", "show", "acme-2026-12"])
    assert result.exit_code == 0, result.output
    assert "Total 99.00 USD  VAT (20 %) 19.80  Amount due 118.80 USD" in result.output
    assert "Number" not in result.output
    result = runner.invoke(app, ["--db", db, "invoice", "finalize", "acme-2026-12"])
    assert result.exit_code == 0, result.output
    issued_on, due_on = issued(billed, "acme-2026-12")
    for expected in (
        "invoice acme-2026-12 finalized",
        f"Number INV-{issued_on.year}-000003  issued {issued_on}  due {due_on}",
        "Total 99.00 USD  VAT (20 %) 19.80  Amount due 118.80 USD",
    ):
        assert expected in result.output, expected
    shown = runner.invoke(app, ["--db", db, "invoice", "show", "acme-2026-11"]).output
    assert "Total 99.10 USD  VAT (20 %) 19.82  Amount due 118.92 USD" in shown


def test_volume_lines_say_which_tier_applied_and_its_rate() -> None:
    plan, _ = parse_plan(PLAN)
    volume = plan.charges[1]
    assert [tier_note(volume, Decimal(n)) for n in (0, 999, 1000, 1001)] == [
        "",
        "all 999 at 0.30 (tier up to 1,000)",
        "all 1,000 at 0.30 (tier up to 1,000)",
        "all 1,001 at 0.10 (tier above 1,000)",
    ]
