"""A ledger billed under outcome contracts: contract and plan files written, records in,
invoices out (the tests of contracts, signals, judges and evidence share it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

from payoff.core.periods import from_us
from payoff.service import contracts, ingest_lines, invoices, plans
from payoff.service.clock import now_us
from payoff.service.ingest import IngestReport
from payoff.store import open_store
from payoff.store.protocol import Store

RESOLUTION_CONTRACT = """id: support.resolution
version: 1
description: One support conversation resolved by the agent.
outcome: ticket.resolved
unit: {singular: resolution, plural: resolutions}
verification:
  confirm: true
  assume_after: 24h
  follow_up: [conversation.reopened]
  warranty: 30d
"""


def plan_text(contract: str, outcome: str = "ticket.resolved", price: str = "0.99") -> str:
    """A plan with one outcome charge that names a contract."""
    return f"""id: by-contract
version: 1
currency: USD
charges:
  - name: outcomes
    type: outcome
    outcome: {outcome}
    contract: {contract}
    model: per_unit
    unit_price: "{price}"
"""


def ledger(
    tmp_path: Path, contract: str = RESOLUTION_CONTRACT, customer: str = "c", **plan: str
) -> Store:
    """A ledger with the contract applied and the customer on a plan naming it from
    September 2026."""
    store = open_store(tmp_path / "l.db")
    (tmp_path / "contract.yaml").write_text(contract)
    applied, _ = contracts.apply_contract(store, tmp_path / "contract.yaml")
    outcome, price = plan.get("outcome", applied.outcome), plan.get("price", "0.99")
    (tmp_path / "plan.yaml").write_text(plan_text(applied.reference, outcome, price))
    plans.apply_plan(store, tmp_path / "plan.yaml")
    plans.subscribe(store, customer, "by-contract", dt.date(2026, 9, 1))
    return store


def ingest(store: Store, *records: dict[str, Any]) -> IngestReport:
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1)]
    return ingest_lines(store, lines, workers=0)


def billed(document: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(period billed, charge, units, amount) of each line of an invoice."""
    return [
        (f.get("late_period", document["period"]), f["charge"], f["units"], f["amount"])
        for f in document["fees"]
    ]


def invoice(store: Store, period: str, finalize: bool = True) -> dict[str, Any]:
    """The customer's invoice for a period (finalized unless told not to)."""
    (draft,) = invoices.run_invoices(store, period)
    return invoices.act_on_invoice(store, draft["id"], "finalize") if finalize else draft


def this_month() -> str:
    """The current period: a verdict given now (a judge's, an auditor's) is billed in it."""
    return from_us(now_us()).strftime("%Y-%m")
