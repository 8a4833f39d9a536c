"""The invoice and credit-note codec, pure: stored bytes read back to the same bytes, and a
document whose totals do not add up is refused (the pair assertion)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payoff.core.canonical import DocumentError, canonical_json, digest
from payoff.core.chain import GENESIS, Seal
from payoff.core.credit_notes import CreditNote, credit_note, credits_by_period
from payoff.core.invoicing import Invoice, Rerated, Window, make_invoice
from payoff.core.plan import Charge, Plan
from payoff.core.rating import DISCOUNT_LINE, TRUE_UP_LINE, Fee

FIXTURES = Path(__file__).parent / "fixtures" / "invoice_documents.jsonl"
"""Documents as the invoice runs of the billing, outcome and parity tests and of the demo
ledger (seed 3, four customers, its month finalized) wrote them before the invoice had a
type, then (the last lines) documents sealed when finalized, one with the periods its late
lines rated again and its credit note (tests/ledger_support.py): the bytes the codec must
keep."""


def stored(kind: str) -> list[str]:
    rows = [json.loads(line) for line in FIXTURES.read_text().splitlines()]
    return [row["text"] for row in rows if row["kind"] == kind]


def test_the_fixtures_cover_late_lines_credit_notes_and_several_windows() -> None:
    documents = [json.loads(text) for text in stored("invoice")]
    assert len(documents) > 50
    assert any("late_period" in line for d in documents for line in d["fees"])
    assert any(len(d["windows"]) > 1 for d in documents)
    assert any(d["basis"] for d in documents)
    assert stored("credit_note")
    sealed = [d for d in documents if "seal" in d]
    assert any(d["rerated"] for d in sealed) and all(d["seal"]["records_digest"] for d in sealed)
    assert any("seal" in json.loads(text) for text in stored("credit_note"))


@pytest.mark.parametrize("text", stored("invoice"))
def test_a_stored_invoice_reads_back_to_the_same_bytes(text: str) -> None:
    invoice = Invoice.from_json(text, "finalized")
    assert invoice.to_json() == text
    assert invoice.status == "finalized"
    assert Invoice.from_document(invoice.to_document()) == invoice


@pytest.mark.parametrize("text", stored("credit_note"))
def test_a_stored_credit_note_reads_back_to_the_same_bytes(text: str) -> None:
    note = CreditNote.from_json(text)
    assert note.to_json() == text
    assert note.total < 0


def _stored_invoice() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(stored("invoice")[0])
    return document


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("total", "1.00", "total"),
        ("subtotal", "0.01", "subtotal"),
        ("minimum_true_up", "7.00", "total"),
        ("total", "1E+400", "total"),
        ("total", "NaN", "finite"),
        ("total", 12, "expected str"),
        ("plan_digest", "sha256:0", "last window"),
        ("windows", [{"plan": "x@1"}], "missing"),
        ("surprise", "1", "unknown"),
    ],
)
def test_a_document_that_does_not_hold_together_is_refused(
    key: str, value: object, message: str
) -> None:
    document = _stored_invoice()
    document[key] = value
    with pytest.raises(DocumentError, match=message):
        Invoice.from_json(canonical_json(document), "draft")


def test_a_line_with_an_amount_changed_breaks_the_subtotal() -> None:
    document = _stored_invoice()
    document["fees"][0]["amount"] = str(Decimal(document["fees"][0]["amount"]) + 1)
    with pytest.raises(DocumentError, match="sum of its lines"):
        Invoice.from_json(canonical_json(document), "draft")


def test_a_status_outside_the_vocabulary_is_refused() -> None:
    with pytest.raises(DocumentError, match="not an invoice status"):
        Invoice.from_json(stored("invoice")[0], "quote")
    with pytest.raises(DocumentError, match="not an invoice status"):
        Invoice.from_document({**_stored_invoice(), "status": "settled"})


def test_a_missing_field_is_refused() -> None:
    document = _stored_invoice()
    del document["inputs_digest"]
    with pytest.raises(DocumentError, match="inputs_digest"):
        Invoice.from_json(canonical_json(document), "draft")


def test_a_credit_note_whose_total_is_not_its_lines_is_refused() -> None:
    document = json.loads(stored("credit_note")[0])
    document["total"] = "-0.01"
    with pytest.raises(DocumentError, match="sum of its lines"):
        CreditNote.from_json(canonical_json(document))


PLAN = Plan(
    id="p",
    version=2,
    currency="USD",
    minimum=Decimal("10.00"),
    maximum=Decimal("50.00"),
    charges=(Charge(name="s", type="subscription", amount=Decimal(1)),),
)
money = st.decimals(min_value=-1000, max_value=1000, places=2)


@given(own=st.lists(money.map(abs), max_size=4), late=st.lists(money, max_size=4))
def test_a_made_invoice_reads_back_equal(own: list[Decimal], late: list[Decimal]) -> None:
    fees = [Fee(f"c{i}", Decimal(i), a, a, "2026-11") for i, a in enumerate(own)]
    lates = [Fee(f"c{i}", Decimal(0), a, a, "2026-10", late=True) for i, a in enumerate(late)]
    window = Window("p@2", digest({"plan": 2}), 1, 30)
    invoice = make_invoice(
        invoice_id="acme-2026-11",
        customer="acme",
        period="2026-11",
        status="draft",
        plan=PLAN,
        fees=fees,
        late=lates,
        as_of="2026-12-01T00:00:00Z",
        plan_digest=window.plan_digest,
        inputs_digest=digest([]),
        windows=[window],
        basis=["acme-2026-10:finalized"],
    )
    again = Invoice.from_json(invoice.to_json(), "draft")
    assert again == invoice
    assert again.totals.subtotal == sum(own + late, Decimal(0))
    notes = credits_by_period(again)
    if notes:
        note = credit_note(again, "acme-2026-10", "2026-10", notes["2026-10"])
        assert CreditNote.from_json(note.to_json()) == note
        assert note.total == sum((a for a in late if a < 0), Decimal(0))


def test_what_an_invoice_billed_for_its_period_includes_its_adjustments() -> None:
    fees = [Fee("s", Decimal(1), Decimal("4.00"), Decimal("4.00"), "2026-11")]
    late = [Fee("s", Decimal(0), Decimal("-1.00"), Decimal("-1.00"), "2026-10", late=True)]
    invoice = make_invoice(
        invoice_id="i",
        customer="acme",
        period="2026-11",
        status="draft",
        plan=PLAN,
        fees=fees,
        late=late,
        as_of="",
        plan_digest="",
        inputs_digest="",
    )
    own = invoice.billed_for("2026-11")
    assert [fee.charge for fee in own] == ["s", TRUE_UP_LINE, DISCOUNT_LINE]
    assert own[1].amount == Decimal("6.00")  # the minimum is 10.00; own fees are 4.00
    assert invoice.billed_for("2026-10") == late
    assert invoice.totals.total == Decimal("9.00")


SEAL = Seal(
    number="INV-2026-000007",
    issued_at="2026-12-02T09:30:00.000001Z",
    previous=GENESIS,
    records_digest=digest(["rows"]),
    issuer_digest=digest({"name": "Example AI"}),
)


def test_a_sealed_invoice_with_rerated_periods_reads_back_to_the_same_bytes() -> None:
    window = Window("p@2", digest({"plan": 2}), 1, 30)
    late = [Fee("s", Decimal(0), Decimal("-1.00"), Decimal("-1.00"), "2026-10", late=True)]
    invoice = make_invoice(
        invoice_id="acme-2026-11",
        customer="acme",
        period="2026-11",
        status="finalized",
        plan=PLAN,
        fees=[Fee("s", Decimal(1), Decimal("4.00"), Decimal("4.00"), "2026-11")],
        late=late,
        as_of="2026-12-01T00:00:00Z",
        plan_digest=window.plan_digest,
        inputs_digest=digest([]),
        windows=[window],
        basis=["acme-2026-10:finalized"],
        rerated=[Rerated("2026-10", (window,), ("acme-2026-10",))],
    ).sealed(SEAL)
    text = invoice.to_json()
    assert json.loads(text)["seal"]["previous"] == GENESIS
    assert json.loads(text)["rerated"][0]["billed"] == ["acme-2026-10"]
    again = Invoice.from_json(text, "finalized")
    assert again == invoice and again.to_json() == text
    assert "seal" not in again.unsealed().to_json()
    note = credit_note(again, "acme-2026-10", "2026-10", late).sealed(SEAL)
    assert CreditNote.from_json(note.to_json()) == note


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("seal", {"number": "1", "issued_at": "x"}, "missing"),
        ("seal", {"number": "1", "issued_at": "x", "previous": GENESIS, "more": "1"}, "unknown"),
        ("seal", {"number": 1, "issued_at": "x", "previous": GENESIS}, "expected str"),
        ("rerated", [{"period": "2026-10", "windows": [], "billed": [1]}], "list of strings"),
        ("rerated", "2026-10", "expected list"),
    ],
)
def test_a_seal_or_rerated_period_that_does_not_hold_together_is_refused(
    key: str, value: object, message: str
) -> None:
    document = _stored_invoice()
    document[key] = value
    with pytest.raises(DocumentError, match=message):
        Invoice.from_json(canonical_json(document), "finalized")
