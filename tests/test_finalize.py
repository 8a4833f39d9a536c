"""Finalizing is one step: what the service checked is what the store finalizes.

Another process may re-run the period (a new draft, another total), or finalize or void
another of the customer's invoices, between the moment `invoice finalize` reads and checks
the draft and the moment the store finalizes it. The ledgers below make that happen at
exactly that moment: a real second connection to the same file acts just before the store's
write, as a second `payoff` process would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from payoff.service import ingest_lines, invoices, plans
from payoff.service.plans import BillingError
from payoff.store import open_store
from payoff.store.sqlite import SqliteStore

TOKENS = "charges:\n  - {name: tok, type: tokens, model: per_unit, unit_price: '2.00', per: 1000}\n"


def step(id: str, time: str, tokens: int = 1000) -> bytes:
    record = {
        "id": id,
        "time": time,
        "customer": "c",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": tokens,
        "output_tokens": 0,
    }
    return msgspec.json.encode(record)


def ingest(path: Path, *lines: bytes) -> None:
    store = open_store(path)
    try:
        assert ingest_lines(store, list(enumerate(lines, start=1)), workers=0).clean
    finally:
        store.close()


class InterleavedLedger(SqliteStore):
    """A ledger on which `meanwhile` runs (through its own connections) just before the
    store finalizes: between the service's checks and its write."""

    meanwhile: Callable[[Path], None] = staticmethod(lambda path: None)

    def finalize_invoice(self, *args: Any, **kwargs: Any) -> Any:
        self.meanwhile(self.path)
        return super().finalize_invoice(*args, **kwargs)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A ledger where customer c is billed 2.00 per 1,000 tokens from October."""
    path = tmp_path / "ledger.db"
    (tmp_path / "tok.yaml").write_text(f"id: tok\nversion: 1\ncurrency: USD\n{TOKENS}")
    ingest(path, step("oct-1", "2026-10-10T00:00:00Z"), step("nov-1", "2026-11-10T00:00:00Z"))
    store = open_store(path)
    plans.apply_plan(store, tmp_path / "tok.yaml")
    plans.subscribe(store, "c", "tok", dt.date(2026, 10, 1))
    store.close()
    return path


def test_a_draft_rerated_between_check_and_act_is_not_finalized(path: Path) -> None:
    ledger = InterleavedLedger(path)
    (draft,) = invoices.run_invoices(ledger, "2026-11")
    assert draft["total"] == "2.00"

    def rerun(path: Path) -> None:
        # More November usage arrives and the period is run again: the draft now bills 6.00.
        ingest(path, step("nov-2", "2026-11-11T00:00:00Z", tokens=2000))
        other = open_store(path)
        try:
            (again,) = invoices.run_invoices(other, "2026-11")
            assert (again["id"], again["total"]) == (draft["id"], "6.00")
        finally:
            other.close()

    ledger.meanwhile = rerun  # type: ignore[method-assign]
    with pytest.raises(BillingError, match="changed while being finalized"):
        invoices.act_on_invoice(ledger, draft["id"], "finalize")
    ledger.meanwhile = InterleavedLedger.meanwhile  # type: ignore[method-assign]
    stored = ledger.get_invoice(draft["id"])
    assert stored is not None
    # Nothing was finalized: not the total that was checked, nor the one that replaced it.
    assert (stored.status, stored.number, str(stored.total)) == ("draft", None, "6.00")
    # Finalizing again checks and finalizes the draft as it now stands.
    assert invoices.act_on_invoice(ledger, draft["id"], "finalize")["total"] == "6.00"
    ledger.close()


def test_a_draft_whose_basis_changed_between_check_and_act_is_not_finalized(path: Path) -> None:
    ledger = InterleavedLedger(path)
    (october,) = invoices.run_invoices(ledger, "2026-10")
    invoices.act_on_invoice(ledger, october["id"], "finalize")
    (november,) = invoices.run_invoices(ledger, "2026-11")
    assert november["basis"] == [f"{october['id']}:finalized"]

    def void_october(path: Path) -> None:
        other = open_store(path)
        try:
            invoices.act_on_invoice(other, october["id"], "void")
        finally:
            other.close()

    ledger.meanwhile = void_october  # type: ignore[method-assign]
    with pytest.raises(BillingError, match="run the period again"):
        invoices.act_on_invoice(ledger, november["id"], "finalize")
    stored = ledger.get_invoice(november["id"])
    assert stored is not None and stored.status == "draft"
    ledger.close()
