"""A ledger whose invoices were finalized over two months, for the tests that prove them
(`payoff verify`, bundles): built once per module, copied per test."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from factories import REPO
from payoff.demo import generate
from payoff.service import ingest_lines, invoices, plans
from payoff.store import open_store
from payoff.store.protocol import Store

PLANS = REPO / "examples" / "plans"


def ingest(store: Store, records: list[dict[str, Any]]) -> None:
    """Ingest records; the demo's few verdicts out of lifecycle order are refused."""
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1)]
    report = ingest_lines(store, lines, workers=0)
    assert report.rejected == 0 or all(p.field == "verdict" for p in report.problems)


def finalize_all(store: Store, period: str) -> list[dict[str, Any]]:
    drafts = invoices.run_invoices(store, period)
    return [invoices.act_on_invoice(store, d["id"], "finalize") for d in drafts]


def sql(path: Path, query: str, *args: Any) -> Any:
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchone()


def invoiced_ledger(path: Path) -> Path:
    """November of four customers on four kinds of plan, finalized; then late usage, and a
    reversal of an outcome November billed, on December's invoices (late lines, a credit
    note), finalized too."""
    store = open_store(path)
    ingest(store, list(generate(seed=3, customers=4, month="2026-11")))
    for name in ("cost-plus", "per-outcome", "hybrid", "verified-outcomes"):
        plans.apply_plan(store, PLANS / f"{name}.yaml")
    for customer, plan in (("acme", "hybrid"), ("globex", "cost-plus"), ("initech", "per-outcome"),
                           ("umbrella", "verified-outcomes")):  # fmt: skip
        plans.subscribe(store, customer, plan, dt.date(2026, 11, 1))
    finalize_all(store, "2026-11")
    accepted, at_us = sql(
        path,
        "SELECT a.outcome, a.occurred_at_us FROM attestations a JOIN outcomes o"
        " ON o.id = a.outcome WHERE o.customer = 'umbrella' AND a.verdict = 'accept'"
        # an outcome of a type the plan bills, so that its reversal is credited
        " AND o.type IN ('ticket.resolved', 'change.merged')"
        " ORDER BY a.occurred_at_us, a.id LIMIT 1",
    )
    reversed_at = dt.datetime.fromtimestamp(at_us / 1e6 + 3600, dt.UTC).isoformat()
    late = [
        {"id": f"late-{customer}", "time": "2026-11-20T12:00:00Z", "customer": customer,
         "task": f"late-{customer}", "provider": "openai", "model": "gpt-4o",
         "input_tokens": 3_000_000, "output_tokens": 100_000}
        for customer in ("acme", "globex")
    ]  # fmt: skip
    late.append({"record": "attestation", "id": "reversal", "outcome": accepted,
                 "verdict": "reverse", "time": reversed_at})  # fmt: skip
    ingest(store, late)
    finalize_all(store, "2026-12")
    store.close()
    return path
