"""Wallets on both backends: grants written once per id, balances, expiry at its instant,
rollover, and invoices drawing credits down when finalized and giving them back when voided."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from clock_support import set_clock
from payoff.core.credits import CreditError
from payoff.core.periods import to_us
from payoff.service import IngestReport, invoices, plans
from payoff.service.access import CustomerNotFound
from payoff.service.credits import (
    GrantTerms,
    expire_credits,
    grant_credits,
    roll_over,
    wallet_balance,
    wallet_ledger,
)
from payoff.store.credits import CreditConflict
from payoff.store.protocol import Store

PLAN = (
    "id: tok\nversion: 1\ncurrency: USD\ncharges:\n"
    "  - {name: tok, type: tokens, model: per_unit, unit_price: '2.00', per: 1000}\n"
)
NOV_10 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)
DEC_2 = dt.datetime(2026, 12, 2, tzinfo=dt.UTC)


def step(id: str, tokens: int) -> dict[str, Any]:
    return {
        "id": id,
        "time": "2026-11-10T00:00:00Z",
        "customer": "c",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": tokens,
        "output_tokens": 0,
    }


@pytest.fixture
def billed(
    store: Store, ingest: Callable[..., IngestReport], monkeypatch: pytest.MonkeyPatch
) -> Store:
    """Customer c on 2.00 USD per 1,000 tokens, 6,000 tokens in November (12.00)."""
    set_clock(monkeypatch, NOV_10)
    assert ingest(step("n1", 1000), step("n2", 5000)).clean
    plans.apply_plan_text(store, PLAN, "tok.yaml")
    plans.subscribe(store, "c", "tok", dt.date(2026, 10, 1))
    return store


def grant(store: Store, amount: str, **terms: Any) -> None:
    grant_credits(store, "c", amount, GrantTerms(**terms))


def test_a_grant_sent_twice_with_the_same_id_is_one_grant(billed: Store) -> None:
    grant(billed, "10.00", grant_id="g1")
    grant(billed, "10.00", grant_id="g1")
    assert wallet_balance(billed, "c") == {
        "customer": "c",
        "currency": "USD",
        "balance": "10.00",
        "pending": "0.00",
        "available": "10.00",
    }
    with pytest.raises(CreditConflict, match="g1"):
        grant(billed, "11.00", grant_id="g1")
    assert [e["id"] for e in wallet_ledger(billed, "c")] == ["g1"]


def test_amounts_are_exact_to_the_minor_unit(billed: Store) -> None:
    with pytest.raises(CreditError, match="more than 2 decimal places"):
        grant(billed, "1.005")
    with pytest.raises(CreditError, match="positive"):
        grant(billed, "-1")
    with pytest.raises(CustomerNotFound, match="no customer"):
        grant_credits(billed, "nobody", "1", GrantTerms())
    grant(billed, "0.01", grant_id="cent")
    assert wallet_balance(billed, "c")["balance"] == "0.01"


def test_credit_granted_for_later_is_pending_until_then(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant(billed, "5.00", grant_id="now")
    grant(billed, "3.00", grant_id="later", effective_at_us=to_us(DEC_2))
    assert wallet_balance(billed, "c")["pending"] == "3.00"
    assert wallet_balance(billed, "c")["available"] == "5.00"
    set_clock(monkeypatch, DEC_2)
    assert wallet_balance(billed, "c")["available"] == "8.00"


def test_expiry_is_written_at_the_exact_instant(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    expires = to_us(NOV_10) + 1_000_000
    grant(billed, "7.00", grant_id="g", expires_at_us=expires)
    set_clock(monkeypatch, expires - 1)
    assert expire_credits(billed, "c") == []
    assert wallet_balance(billed, "c")["balance"] == "7.00"
    set_clock(monkeypatch, expires)
    assert wallet_balance(billed, "c")["balance"] == "0.00"  # counted before it is written
    (expiry,) = expire_credits(billed, "c")
    assert (expiry.at_us, expiry.amount_minor) == (expires, -700)
    assert expire_credits(billed, "c") == []


def test_rollover_carries_unused_allowance_capped_with_expiry(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant(billed, "20.00", grant_id="allowance-nov")
    set_clock(monkeypatch, DEC_2)
    moved = roll_over(billed, "c", "allowance-nov", "15.00", to_us(DEC_2) + 10**12)
    assert [(e.kind, e.amount_minor) for e in moved] == [("rollover", -2000), ("grant", 1500)]
    assert roll_over(billed, "c", "allowance-nov", "15.00", None) == []
    assert wallet_balance(billed, "c")["balance"] == "15.00"


def finalize_november(store: Store, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    set_clock(monkeypatch, DEC_2)
    (draft,) = invoices.run_invoices(store, "2026-11")
    return invoices.act_on_invoice(store, draft["id"], "finalize")


def test_an_invoice_without_credits_shows_none(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = finalize_november(billed, monkeypatch)
    assert "credits_applied" not in document and "credit_balance" not in document
    assert document["amount_due"] == "12.00"


def test_finalizing_draws_credits_by_priority_and_voiding_gives_them_back(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant(billed, "5.00", grant_id="second", priority=2)
    grant(billed, "4.00", grant_id="first", priority=1)
    document = finalize_november(billed, monkeypatch)
    assert (document["total"], document["credits_applied"]) == ("12.00", "9.00")
    assert (document["credit_balance"], document["amount_due"]) == ("0.00", "3.00")
    drawn = {
        e["grant"]: e["amount"] for e in wallet_ledger(billed, "c") if e["kind"] == "consumption"
    }
    assert drawn == {"first": "-4.00", "second": "-5.00"}
    invoices.act_on_invoice(billed, document["id"], "void")
    assert wallet_balance(billed, "c")["balance"] == "9.00"
    kinds = [e["kind"] for e in wallet_ledger(billed, "c")]
    assert kinds.count("void") == 2


def test_credits_exceeding_the_total_draw_only_the_total(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant(billed, "100.00", grant_id="big")
    document = finalize_november(billed, monkeypatch)
    assert (document["credits_applied"], document["amount_due"]) == ("12.00", "0.00")
    assert document["credit_balance"] == "88.00"
    assert wallet_balance(billed, "c")["balance"] == "88.00"


def test_credit_expired_before_finalizing_is_not_drawn(
    billed: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    grant(billed, "5.00", grant_id="gone", expires_at_us=to_us(DEC_2))
    grant(billed, "1.00", grant_id="kept")
    document = finalize_november(billed, monkeypatch)
    assert (document["credits_applied"], document["amount_due"]) == ("1.00", "11.00")
    expiry = [e for e in wallet_ledger(billed, "c") if e["kind"] == "expiry"]
    assert [(e["grant"], e["amount"], e["at"]) for e in expiry] == [
        ("gone", "-5.00", "2026-12-02T00:00:00Z")
    ]
