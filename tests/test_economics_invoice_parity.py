"""Simulation prices the baseline exactly as an invoice run does: for every plan, each
customer's simulated revenue is the total of the invoice a run makes of it on that plan."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from factories import REPO
from payoff import demo
from payoff.catalog import Catalog
from payoff.core.economics import customer_periods, simulate_plans
from payoff.core.periods import to_us
from payoff.plan_files import parse_plan
from payoff.service import economics, ingest_lines, invoices, plans
from payoff.store import open_store

# The reviewer's plans: reasoning budgets on a charge that counts output only.
PA2 = """
id: pa2
version: 1
currency: USD
charges:
  - {name: main, type: task, task_type: "*", count: all, model: volume, tiers: [{up_to: 1, unit_price: "2.00"}, {up_to: null, unit_price: "1.50"}]}
  - {name: toks, type: tokens, classes: [output], model: graduated, per: 1000, hidden_tokens_per_task_max: 1000, tiers: [{up_to: 2, unit_price: "0.10"}, {up_to: null, unit_price: "0.05", flat: "1.00"}]}
  - {name: sub, type: subscription, amount: "10.00"}
"""  # noqa: E501
PA3 = """
id: pa3
version: 1
currency: USD
charges:
  - {name: toks, type: tokens, classes: [output], model: per_unit, unit_price: "1.00", per: 1000, hidden_tokens_per_task_max: 1000}
"""  # noqa: E501
PLAN_TEXTS = {
    **{p.stem: p.read_text() for p in sorted((REPO / "examples" / "plans").glob("*.yaml"))},
    "pa2": PA2,
    "pa3": PA3,
}
RECORDS = list(demo.generate(seed=5, customers=3, month="2026-11", scale=0.1))


@pytest.mark.parametrize("name", sorted(PLAN_TEXTS))
def test_simulated_baseline_revenue_is_the_invoice_total(name: str, tmp_path: Path) -> None:
    plan = parse_plan(PLAN_TEXTS[name], name)[0]
    store = open_store(tmp_path / "parity.db")
    plans.apply_plan_text(store, PLAN_TEXTS[name], name)
    for customer in demo.customer_names(3):
        plans.subscribe(store, customer, f"{plan.id}@{plan.version}", dt.date(2026, 11, 1))
    ingest_lines(store, demo.as_lines(RECORDS), catalog=Catalog())
    drafts = invoices.run_invoices(store, "2026-11")
    assert drafts
    as_of_us = billing_as_of(drafts[0]["as_of"])
    data = economics.load(store, "2026-11", as_of_us)
    customers = customer_periods(data.buckets, data.facts, data.outcomes)
    for invoice in drafts:
        ledger = {invoice["customer"]: customers[invoice["customer"]]}
        figures = simulate_plans([plan], ledger, "2026-11", data.period.days)[0]
        assert figures.revenue == Decimal(invoice["total"]), (name, invoice["customer"])
    store.close()


def billing_as_of(text: str) -> int:
    return to_us(dt.datetime.fromisoformat(text.replace("Z", "+00:00")))
