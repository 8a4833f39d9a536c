"""The market's pricing models as plans (examples/plans/market/): each bills a small ledger
exactly as its published price says, checked against a hand computation written here."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from factories import REPO, attestation, outcome, task, usage
from payoff.service import ingest_lines, invoices, plans
from payoff.store import open_store

MARKET = REPO / "examples" / "plans" / "market"
NOV = "2026-11-{:02d}T10:00:00Z"


def _bill(tmp_path: Path, plan: str, records: list[dict[str, Any]], start: int = 1) -> Any:
    """The November invoice of customer acme on a market plan, after ingesting records;
    as of December 20 (past every acceptance window of these plans)."""
    store = open_store(tmp_path / "ledger.db")
    try:
        # The plan first: a verdict is judged by the policy of the plan its claim falls under.
        plans.apply_plan(store, MARKET / f"{plan}.yaml")
        plans.subscribe(store, "acme", f"market-{plan}", dt.date(2026, 11, start))
        lines = [(n, json.dumps(r).encode()) for n, r in enumerate(records, start=1)]
        report = ingest_lines(store, lines)
        assert report.clean, report.problems
        as_of = int(dt.datetime(2026, 12, 20, tzinfo=dt.UTC).timestamp()) * 10**6
        run = invoices.invoice_run(store, "2026-11", as_of_us=min(as_of, invoices.now_us()))
        assert run.unrated == {}
        [document] = run.drafts
        return document
    finally:
        store.close()


def _fees(document: dict[str, Any]) -> dict[str, Decimal]:
    return {fee["charge"]: Decimal(fee["amount"]) for fee in document["fees"]}


def test_api_price_list_by_model_with_cached_input_and_batch_discounts(tmp_path: Path) -> None:
    records = [
        # gpt-5, online: 2M input of which 1M read from cache, 400k output.
        usage("a", model="gpt-5", input_tokens=2_000_000, cache_read_tokens=1_000_000,
              output_tokens=400_000),
        # gpt-5-mini, batch: 1M input, 200k output, at half price.
        usage("b", model="gpt-5-mini", batch=True, input_tokens=1_000_000, output_tokens=200_000),
        # gpt-4o: 100k input of which 40k cached, 10k output.
        usage("c", model="gpt-4o", input_tokens=100_000, cache_read_tokens=40_000,
              output_tokens=10_000),
    ]  # fmt: skip
    document = _bill(tmp_path, "api-price-list", records)
    # By hand, per million tokens, each line rounded once to the cent, half to even:
    #   gpt-5 input (uncached) 1M x 1.25 = 1.25; cached 1M x 0.125 = 0.125 -> 0.12;
    #   output 0.4M x 10 = 4.00; batch input 1M x 0.625 = 0.625 -> 0.62; batch output
    #   0.2M x 5 = 1.00; gpt-4o input 0.06M x 2.50 = 0.15; cached 0.04M x 1.25 = 0.05;
    #   output 0.01M x 10 = 0.10. Total 7.29.
    assert _fees(document) == {
        "gpt-5-input": Decimal("1.25"),
        "gpt-5-cached-input": Decimal("0.12"),
        "gpt-5-output": Decimal("4.00"),
        "gpt-5-batch-input": Decimal("0.62"),
        "gpt-5-batch-output": Decimal("1.00"),
        "gpt-4o-input": Decimal("0.15"),
        "gpt-4o-cached-input": Decimal("0.05"),
        "gpt-4o-output": Decimal("0.10"),
    }
    assert document["total"] == "7.29"
    assert "unbilled" not in document


def test_flat_premium_chat_subscription(tmp_path: Path) -> None:
    records = [usage("a", model="gpt-5", input_tokens=9_000_000, output_tokens=3_000_000)]
    # Usage is included: the month is $200.00 whatever was used.
    assert _fees(_bill(tmp_path, "premium-chat", records)) == {"premium": Decimal("200.00")}


def test_flat_premium_chat_subscription_prorated_from_mid_month(tmp_path: Path) -> None:
    # From November 16: 15 of 30 days, $100.00.
    assert _fees(_bill(tmp_path, "premium-chat", [], start=16)) == {"premium": Decimal("100.00")}


def test_per_matter_and_per_document_review(tmp_path: Path) -> None:
    records = [
        task("m1", "completed", NOV.format(5), type="legal.matter"),
        task("m2", "completed", NOV.format(9), type="legal.matter"),
        task("m3", "open", NOV.format(9), type="legal.matter"),  # not closed: not billed
        *(task(f"d{i}", "completed", NOV.format(6), type="legal.document_review")
          for i in range(26)),
        task("d-failed", "failed", NOV.format(6), type="legal.document_review"),
    ]  # fmt: skip
    # By hand: 2 matters x $750 = $1,500; 26 documents less 20 included = 6 x $2.50 = $15.
    assert _fees(_bill(tmp_path, "document-review", records)) == {
        "matters": Decimal("1500.00"),
        "documents": Decimal("15.00"),
    }


def _tickets() -> list[dict[str, Any]]:
    return [
        task("t1", "completed", NOV.format(2)),
        task("t2", "completed", NOV.format(3)),
        task("t3", "completed", NOV.format(4)),
        task("t4", "completed", NOV.format(5)),
        outcome("o1", "t1", time=NOV.format(2)),  # accepted
        outcome("o2", "t2", time=NOV.format(3)),  # rejected: never billed
        outcome("o3", "t3", time=NOV.format(4)),  # no verdict: deemed accepted after 7 days
        outcome("o4", "t4", time=NOV.format(28)),  # no verdict, deemed on Dec 5: December's
        attestation("v1", "o1", "accept", NOV.format(3)),
        attestation("v2", "o2", "reject", NOV.format(4)),
    ]


def test_per_resolved_ticket_with_verification(tmp_path: Path) -> None:
    # By hand: o1 (accepted) and o3 (deemed on November 11) in November: 2 x $0.99.
    document = _bill(tmp_path, "resolved-tickets", _tickets())
    assert _fees(document) == {"resolved-tickets": Decimal("1.98")}


def test_per_qualified_candidate_with_a_warranty(tmp_path: Path) -> None:
    records = [
        *(task(f"c{i}", "completed", NOV.format(2 + i)) for i in range(4)),
        *(outcome(f"q{i}", f"c{i}", type="candidate.qualified", value=None,
                  time=NOV.format(2 + i)) for i in range(4)),
        attestation("a0", "q0", "accept", NOV.format(10)),
        attestation("a1", "q1", "accept", NOV.format(10)),
        attestation("a2", "q2", "accept", NOV.format(10)),
        attestation("r2", "q2", "reverse", NOV.format(20)),  # left within the warranty
        # q3: no verdict yet, and no deemed acceptance: waits, unbilled.
    ]  # fmt: skip
    # By hand: q0 and q1 stand, q2 was reversed within its 90 days: 2 x $50.
    assert _fees(_bill(tmp_path, "qualified-candidates", records)) == {
        "qualified-candidates": Decimal("100.00")
    }


def test_success_fee_with_a_floor_and_a_cap(tmp_path: Path) -> None:
    values = ["100.00", "4000.00", "50000.00", "0.00"]
    records = [
        *(task(f"s{i}", "completed", NOV.format(2 + i)) for i in range(4)),
        *(outcome(f"v{i}", f"s{i}", type="savings.realized", value=value,
                  time=NOV.format(2 + i)) for i, value in enumerate(values)),
        *(attestation(f"a{i}", f"v{i}", "accept", NOV.format(8)) for i in range(4)),
    ]  # fmt: skip
    # By hand, 10 % of each value, at least $25 and at most $2,000: $10 -> $25 (floor);
    # $400; $5,000 -> $2,000 (cap); $0 -> $25 (floor). Sum $2,450.
    assert _fees(_bill(tmp_path, "success-fee", records)) == {"success-fee": Decimal("2450.00")}


def test_hybrid_platform_fee_allowance_and_per_outcome_fees(tmp_path: Path) -> None:
    records = [
        usage("u1", model="gpt-4o", input_tokens=9_000_000, output_tokens=3_500_000),
        *(task(f"t{i}", "completed", NOV.format(3)) for i in range(3)),
        *(outcome(f"o{i}", f"t{i}", time=NOV.format(3)) for i in range(3)),
    ]
    # By hand: platform $1,000; 12.5M tokens less 10M included = 2.5M x $3 = $7.50;
    # 3 resolved tickets x $1.50 = $4.50. Total $1,012.00.
    document = _bill(tmp_path, "platform-hybrid", records)
    assert _fees(document) == {
        "platform": Decimal("1000.00"),
        "token-allowance": Decimal("7.50"),
        "resolved-tickets": Decimal("4.50"),
    }
    assert document["total"] == "1012.00"


@pytest.mark.parametrize("path", sorted(MARKET.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_market_plan_has_a_worked_example_in_the_docs(path: Path) -> None:
    docs = (REPO / "docs" / "plans.md").read_text()
    assert f"examples/plans/market/{path.name}" in docs
