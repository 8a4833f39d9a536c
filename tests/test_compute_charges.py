"""Compute charges: GPU-seconds of self-hosted usage from the price overrides' GPU-hour
figures, and cost-plus on the provider cost of the records a filter matches."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from factories import usage
from payoff.catalog import Catalog, load_overrides
from payoff.cli import app
from payoff.core.compute import GpuRate, rounded_seconds
from payoff.plan_files import PlanError, parse_plan
from payoff.service import ingest_lines, invoices, plans
from payoff.store import open_store
from payoff.store.protocol import Store

runner = CliRunner()
OVERRIDES = """prices:
  - provider: self-hosted
    model: llama-70b
    gpu_hour_usd: "2.40"
    gpus: 4
    input_tokens_per_second: 40000
    output_tokens_per_second: 1200
"""
PLAN = """id: compute
version: 1
currency: USD
charges:
  - name: gpu-time
    type: tokens
    compute: gpu_seconds
    model: per_unit
    unit_price: "0.01"
    filters: {provider: self-hosted}
  - name: api-pass-through
    type: tokens
    markup: "0.20"
    filters: {provider: openai}
"""


def test_gpu_seconds_are_exact_and_rounded_once() -> None:
    rate = GpuRate(4, Decimal(40000), Decimal(1200))
    tokens = {"input": 100_000, "cache_read": 20_000, "output": 3_600}
    assert rate.seconds(tokens, ("input", "cache_read", "output")) == 24
    assert rate.seconds(tokens, ("output",)) == 12
    assert rounded_seconds(Fraction(1, 3)) == Decimal("0.333333")
    assert rounded_seconds(Fraction(1, 2_000_000)) == Decimal("0.000000")  # half to even
    assert rounded_seconds(Fraction(3, 2_000_000)) == Decimal("0.000002")


def test_a_compute_charge_prices_gpu_seconds_not_markup() -> None:
    bad = PLAN.replace('    unit_price: "0.01"\n', '    unit_price: "0.01"\n    markup: "1"\n', 1)
    with pytest.raises(PlanError, match="compute: a compute charge prices GPU-seconds"):
        parse_plan(bad)
    with pytest.raises(PlanError, match="compute: one of gpu_seconds"):
        parse_plan(PLAN.replace("gpu_seconds", "gpu_hours"))


def _ledger(store: Store, tmp_path: Path, *extra: dict[str, Any]) -> Path:
    prices = tmp_path / "prices.yaml"
    prices.write_text(OVERRIDES)
    records = [
        usage("s1", provider="self-hosted", model="llama-70b", input_tokens=100_000,
              cache_read_tokens=20_000, output_tokens=2_400),
        usage("s2", provider="self-hosted", model="llama-70b", input_tokens=0,
              output_tokens=1_200),
        usage("o1", model="gpt-4o", input_tokens=1_000_000, output_tokens=100_000),
        *extra,
    ]  # fmt: skip
    lines = [(n, json.dumps(r).encode()) for n, r in enumerate(records, 1)]
    assert ingest_lines(store, lines, catalog=Catalog.from_file(prices)).clean
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    plans.apply_plan(store, plan)
    plans.subscribe(store, "acme", "compute", dt.date(2026, 11, 1))
    return prices


def test_gpu_seconds_and_filtered_cost_plus_are_billed(store: Store, tmp_path: Path) -> None:
    prices = _ledger(store, tmp_path)
    [document] = invoices.run_invoices(store, "2026-11", overrides=load_overrides(prices))
    fees = {fee["charge"]: fee for fee in document["fees"]}
    # By hand: a record's input_tokens hold its cache reads, so the input side is 100,000
    # tokens: 4 GPUs x (100,000 / 40,000 + 3,600 output / 1,200) = 22 GPU-seconds at
    # $0.01: $0.22.
    assert (fees["gpu-time"]["units"], fees["gpu-time"]["amount"]) == ("22.000000", "0.22")
    # Cost-plus counts only the openai step's cost: 1M input + 100k output of gpt-4o.
    engine = store.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        query = "SELECT cost_nanousd FROM events WHERE provider = 'openai'"
        openai_cost = conn.exec_driver_sql(query).scalar_one()
    assert Decimal(fees["api-pass-through"]["units"]) == Decimal(openai_cost) / 10**9
    assert Decimal(fees["api-pass-through"]["precise_amount"]) == (
        Decimal(openai_cost) / 10**9 * Decimal("1.20")
    )


def test_a_counted_model_without_gpu_figures_leaves_the_customer_unrated(
    store: Store, tmp_path: Path
) -> None:
    _ledger(store, tmp_path)
    run = invoices.invoice_run(store, "2026-11")  # no overrides given
    assert run.drafts == []
    assert "self-hosted/llama-70b has no gpu_hour_usd price override" in run.unrated["acme"]


def test_the_cli_reads_the_gpu_figures_from_prices(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    store = open_store(path)
    prices = _ledger(store, tmp_path)
    store.close()
    args = ["--db", str(path), "--prices", str(prices), "invoice", "run", "--period", "2026-11"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    [document] = json.loads(result.stdout)
    assert next(f for f in document["fees"] if f["charge"] == "gpu-time")["amount"] == "0.22"


def test_verify_names_a_compute_invoice_as_not_re_derived(store: Store, tmp_path: Path) -> None:
    from payoff.service.verify import verify_ledger

    prices = _ledger(store, tmp_path)
    [draft] = invoices.run_invoices(store, "2026-11", overrides=load_overrides(prices))
    invoices.act_on_invoice(store, draft["id"], "finalize")
    result = verify_ledger(store)
    assert result.ok and result.invoices == 0
    [why] = result.not_rederived
    assert "counts GPU-seconds from the price overrides" in why
