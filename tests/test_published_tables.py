"""`payoff tables`: the published techniques and pricing-models tables, recomputed from the
demo's ledger, pinned; the words by their thresholds; `--scenario` replacing an assumption."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from factories import REPO
from payoff import demo
from payoff.catalog import Catalog, load_overrides
from payoff.cli import app
from payoff.core.published import Claim, alignment_word, risk_word
from payoff.store import open_store

PINNED = Path(__file__).with_name("demo_tables.json")
AS_OF = "2026-12-09T00:00:00Z"  # the demo's own: the month's end and its acceptance window


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ledger `payoff demo` builds, and what it prints (demo.out beside it)."""
    path = tmp_path_factory.mktemp("tables") / "demo.db"
    store = open_store(path)
    printed = io.StringIO()
    console = Console(file=printed, width=200)  # a line a sentence
    demo.run(
        store, Catalog(), seed=7, customers=6, month="2026-11", console=console,
        charts_prefix=path.with_name("demo"),
    )  # fmt: skip
    store.close()
    path.with_name("demo.out").write_text(printed.getvalue())
    return path


def _tables(ledger: Path, *args: str) -> dict[str, Any]:
    prices = str(REPO / "examples" / "demo-prices.yaml")  # the demo's own price override
    result = CliRunner().invoke(
        app,
        ["--prices", prices, "--db", str(ledger), "tables", "--period", "2026-11",
         "--as-of", AS_OF, "--json", *args],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.output)
    return parsed


def test_the_demo_tables_are_pinned(demo_ledger: Path) -> None:
    tables = _tables(demo_ledger)
    assert tables == json.loads(PINNED.read_text())


def test_the_demo_prices_its_gpu_priced_worker_as_its_example_file_does() -> None:
    shipped = load_overrides(REPO / "examples" / "demo-prices.yaml")
    assert demo.demo_catalog(Catalog()).overrides == shipped
    assert demo.demo_catalog(Catalog(shipped)).overrides == shipped  # the caller's price wins


def test_the_demo_meets_the_published_economics(demo_ledger: Path) -> None:
    """Per-outcome pricing earns 20-90 % on the demo, coding loses money under it, and
    speculative decoding lowers cost: the figures the demo is calibrated to show."""
    tables = _tables(demo_ledger)
    models = {row["model"]: row for row in tables["pricing_models"]}
    assert Decimal("0.20") <= Decimal(models["per-outcome"]["margin_share"]) <= Decimal("0.90")
    techniques = {row["technique"]: row for row in tables["techniques"]}
    assert Decimal(techniques["speculative decoding"]["cost_change"]) < 0
    advice = CliRunner().invoke(
        app,
        ["--db", str(demo_ledger), "advise", "--period", "2026-11", "--type", "coding.change",
         "--as-of", AS_OF, "--json"],
    )  # fmt: skip
    assert advice.exit_code == 0, advice.output
    assert Decimal(json.loads(advice.output)["uncapped"]["margin_per_task_usd"]) < 0


def test_every_published_row_agrees_in_direction_or_says_why(demo_ledger: Path) -> None:
    tables = _tables(demo_ledger)
    for technique in tables["techniques"]:
        for claim in technique["claims"]:
            assert claim["verdict"] in ("agrees", "same direction", "disagrees")
            assert (claim["verdict"] == "agrees") == ("why" not in claim), claim
            if "why" in claim:
                assert claim["why"]
    for model in tables["pricing_models"]:
        differing = [m for m in ("provider_risk", "customer_risk", "value_alignment")
                     if not model[f"{m}_agrees"]]  # fmt: skip
        assert len(model["notes"]) == len(differing)
        for measure, note in zip(differing, model["notes"], strict=True):
            assert note.startswith(measure) and f"{model[measure]}"[:4] != ""


def test_a_scenario_replaces_the_assumption_it_names(demo_ledger: Path) -> None:
    """At an acceptance rate of 0.5 and 4 drafted tokens the large model makes
    0.5 / (1 - 0.5^5) = 16/31 passes per token: 48.4 % fewer, inside the published 40-60 %."""
    tables = _tables(demo_ledger, "--scenario", "speculative:spec_accept=0.5,spec_draft=4")
    speculative = tables["techniques"][0]
    assert speculative["depends_on"]["spec_accept"] == "0.5"
    passes = speculative["claims"][0]
    assert passes["figure"] == "target_passes" and passes["verdict"] == "agrees"
    assert Decimal(passes["ledger"]) == Decimal("-0.4839")
    cached = _tables(demo_ledger, "--scenario", "cache:cache_hit=0.5")["techniques"][3]
    assert cached["depends_on"] == {"cache_hit": "0.5"}


def test_an_unknown_assumption_is_refused_in_words(demo_ledger: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["--db", str(demo_ledger), "tables", "--period", "2026-11", "--scenario", "batch:batch=1"],
    )
    assert result.exit_code != 0
    assert "tables takes speculative or cache" in str(result.exception)


def test_the_chart_is_written_the_same_twice(demo_ledger: Path, tmp_path: Path) -> None:
    svg = tmp_path / "tables.svg"
    args = ["--db", str(demo_ledger), "tables", "--period", "2026-11", "--as-of", AS_OF]
    shown = CliRunner().invoke(app, [*args, "--chart", str(svg)])
    assert shown.exit_code == 0, shown.output
    assert "Pricing models, 2026-11" in shown.output and f"chart: {svg}" in shown.output
    first = svg.read_bytes()
    assert CliRunner().invoke(app, [*args, "--chart", str(svg)]).exit_code == 0
    assert svg.read_bytes() == first


@pytest.mark.parametrize(
    ("share", "risk", "alignment"),
    [
        ("0", "low", "poor"),
        ("0.0999", "low", "poor"),
        ("0.10", "medium", "poor"),
        ("0.2999", "medium", "poor"),
        ("0.30", "high", "poor"),
        ("0.70", "high", "moderate"),
        ("0.90", "high", "good"),
        ("0.99", "high", "excellent"),
        ("1", "high", "excellent"),
    ],
)
def test_words_follow_the_stated_thresholds(share: str, risk: str, alignment: str) -> None:
    assert risk_word(Decimal(share)) == risk
    assert alignment_word(Decimal(share)) == alignment


def test_a_claim_agrees_in_range_and_otherwise_compares_signs() -> None:
    fewer = Claim("target_passes", "40-60 % fewer", Decimal("-0.60"), Decimal("-0.40"))
    assert fewer.verdict(Decimal("-0.5")) == "agrees"
    assert fewer.verdict(Decimal("-0.7")) == "same direction"
    assert fewer.verdict(Decimal("0.1")) == "disagrees"
    up = Claim("cost", "cost up", Decimal("0.0001"), None)
    assert up.verdict(Decimal(3)) == "agrees" and up.verdict(Decimal("-0.1")) == "disagrees"
    flat = Claim("revenue per-outcome", "flat", Decimal(0), Decimal(0))
    assert flat.verdict(Decimal(0)) == "agrees" and flat.verdict(Decimal("0.01")) == "disagrees"
    assert flat.verdict(None) == "no figure"


def test_a_partial_scenario_keeps_the_assumptions_it_does_not_replace(demo_ledger: Path) -> None:
    tables = _tables(demo_ledger, "--scenario", "speculative:spec_accept=0.2")
    (row,) = [r for r in tables["techniques"] if r["technique"] == "speculative decoding"]
    assert row["depends_on"] == {"spec_accept": "0.2", "spec_draft": "4", "draft_cost": "0.05"}
    # Fewer passes saved than published: the reason says the other side.
    (passes,) = [c for c in row["claims"] if c["figure"] == "target_passes"]
    assert passes["verdict"] == "same direction"
    assert passes["why"].endswith("the published range assumes higher acceptance")


def test_cells_a_pricing_model_fixes_are_said_so_not_counted_as_agreeing(
    demo_ledger: Path,
) -> None:
    tables = _tables(demo_ledger)
    fixed = {
        (row["model"], measure)
        for row in tables["pricing_models"]
        for measure in ("provider_risk", "customer_risk", "value_alignment")
        if row[f"{measure}_by_construction"]
    }
    assert fixed == {
        ("per-token", "provider_risk"),
        ("per-outcome", "customer_risk"),
        ("subscription", "provider_risk"),
    }
    for row in tables["pricing_models"]:
        for model, measure in fixed:
            if row["model"] == model:
                assert row[f"{measure}_agrees"] is False
                assert any(n.startswith(f"{measure} holds by construction") for n in row["notes"])


def test_an_empty_period_says_so_in_one_sentence(demo_ledger: Path) -> None:
    result = CliRunner().invoke(
        app, ["--db", str(demo_ledger), "tables", "--period", "2025-01", "--as-of", AS_OF]
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("2025-01 has no usage to recompute the tables from")
    assert "None" not in result.output
    assert _tables_of(demo_ledger, "2025-01")["empty"] is True
    assert _tables(demo_ledger)["empty"] is False


def _tables_of(ledger: Path, period: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["--db", str(ledger), "tables", "--period", period, "--as-of", AS_OF, "--json"]
    )
    assert result.exit_code == 0, result.output
    parsed: dict[str, Any] = json.loads(result.output)
    return parsed


def test_the_demo_ends_with_the_tables_and_names_the_agent_that_loses_per_outcome(
    demo_ledger: Path,
) -> None:
    printed = demo_ledger.with_name("demo.out").read_text()
    tables = printed.index("The published tables of AI pricing, recomputed from this ledger:")
    assert "Pricing models, 2026-11" in printed[tables:]
    margins = printed[printed.index("Paid per verified outcome, each agent's margin a task:") :]
    losing = [line for line in margins.splitlines() if "loses money" in line]
    assert len(losing) == 1 and losing[0].startswith("  coding.change: 54 of 114 tasks verified")
    assert "-0.59 USD a task" in losing[0]


def test_a_plan_that_bills_nothing_on_the_ledger_gives_no_verdict(tmp_path: Path) -> None:
    """The per-task and per-outcome plans price the demo's types: on a ledger of others they
    bill nothing, and their rows say so rather than judge the pricing model by them."""
    from contract_support import ingest
    from factories import outcome, usage

    store = open_store(tmp_path / "other.db")
    records = [
        usage(f"u{n}", task=f"t{n}", task_type="translation.job", customer="c") for n in range(4)
    ]
    records += [outcome(f"o{n}", f"t{n}", "c", type="doc.translated") for n in range(2)]
    assert ingest(store, *records).clean
    store.close()
    result = CliRunner().invoke(
        app,
        ["--db", str(tmp_path / "other.db"), "tables", "--period", "2026-11", "--as-of", AS_OF,
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.output)["pricing_models"]}
    for model in ("per-task", "per-outcome"):
        row = rows[model]
        assert row["notes"][0].startswith("its plan bills nothing in this period"), row
        for measure in ("provider_risk", "customer_risk", "value_alignment"):
            assert row[measure] is None and row[f"{measure}_word"] is None
            assert row[f"{measure}_agrees"] is False
    assert rows["per-token"]["customer_risk"] is not None  # cost-plus bills every task
