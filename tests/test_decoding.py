"""Decoding techniques as scenarios: speculative decoding, Medusa heads and lookahead
decoding, each by its target passes per output token, compared by `payoff simulate`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from factories import REPO
from payoff import demo
from payoff.catalog import Catalog
from payoff.core.scenarios import ScenarioError, parse_scenario, target_passes_per_token
from payoff.service import ingest_lines
from payoff.store import open_store

PRICES = REPO / "examples" / "prices.yaml"
SPEC = "spec:spec_accept=0.8,spec_draft=4,draft_cost=0.05"
MEDUSA = "medusa:medusa_tokens_per_pass=2.5,medusa_pass_cost=1.05"
LOOKAHEAD = "lookahead:lookahead_tokens_per_pass=1.6,lookahead_pass_cost=1.3"


def test_tokens_per_pass_are_checked() -> None:
    assert parse_scenario(MEDUSA).techniques() == ["medusa"]
    assert parse_scenario(LOOKAHEAD).techniques() == ["lookahead"]
    with pytest.raises(ScenarioError, match="medusa_tokens_per_pass: between 1 and 64"):
        parse_scenario("m:medusa_tokens_per_pass=0.9")
    with pytest.raises(ScenarioError, match="medusa_tokens_per_pass required"):
        parse_scenario("m:medusa_pass_cost=1.1")
    with pytest.raises(ScenarioError, match="one decoding technique per scenario"):
        parse_scenario("both:medusa_tokens_per_pass=2,lookahead_tokens_per_pass=2")


@pytest.mark.slow
def test_simulate_compares_the_three_on_the_demo_ledger(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    store = open_store(path)
    demo._subscribe(store, 4, "2026-11")
    records = list(demo.generate(seed=7, customers=4, month="2026-11", scale=0.2))
    ingest_lines(store, demo.as_lines(records), catalog=Catalog.from_file(PRICES))
    store.close()
    command = [
        sys.executable, "-m", "payoff", "--db", str(path), "--prices", str(PRICES),
        "simulate", "--period", "2026-11", "--as-of", "2026-12-09T00:00:00Z", "--json",
        "--plan", str(REPO / "examples" / "plans" / "cost-plus.yaml"),
        "--scenario", SPEC, "--scenario", MEDUSA, "--scenario", LOOKAHEAD,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    by_name = {s["scenario"]: s for s in json.loads(done.stdout)["scenarios"]}
    baseline = by_name["baseline"]["usage"]
    # Passes per output token, by hand: speculative (1-A)/(1-A^5) at A=0.8 (1/3.3616),
    # Medusa 1/2.5, lookahead 1/1.6; each bucket's passes are rounded half-even.
    per_token = {
        "spec": target_passes_per_token(Fraction(4, 5), 4),
        "medusa": Fraction(2, 5),
        "lookahead": Fraction(5, 8),
    }
    for name, factor in per_token.items():
        change = Fraction(by_name[name]["usage_change"]["target_passes"])
        assert abs(change - (factor - 1)) < Fraction(1, 1000), name
        assert by_name[name]["usage"]["tokens"] == baseline["tokens"]  # no token changes
        # The self-hosted model's GPU time follows (pass cost / tokens per pass): cheaper.
        assert Fraction(by_name[name]["usage"]["cost_usd"]) < Fraction(baseline["cost_usd"])
    passes = {name: by_name[name]["usage"]["target_passes"] for name in per_token}
    assert passes["spec"] < passes["medusa"] < passes["lookahead"] < baseline["target_passes"]
