"""`payoff advise` on real ledgers: on the demo's, the budget it recommends is the one a brute
force over the same tasks finds; the per-task sums are exact and as of a time; edge cases
are said in words; nothing is written."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest
from rich.console import Console
from typer.testing import CliRunner

from contract_support import RESOLUTION_CONTRACT, plan_text
from factories import OUTCOME_PLAN, attestation, outcome, tool_usage, usage
from payoff import demo
from payoff.catalog import Catalog
from payoff.cli import app
from payoff.core.money import round_div_half_even
from payoff.core.outcome_prices import per_outcome
from payoff.core.periods import to_us
from payoff.service import IngestReport, advice, contracts, ingest_lines, plans
from payoff.service.clock import now_us
from payoff.service.outcomes import states
from payoff.store import open_store
from payoff.store.advice import TaskSelection
from payoff.store.protocol import Store

# After every record the tests ingest, and every claim of November settled (deemed after 7
# days): the same figures whenever the tests run.
AS_OF = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
AS_OF_TEXT = "2100-01-01T00:00:00Z"
NOVEMBER = TaskSelection("support.ticket", to_us(dt.datetime(2026, 11, 1, tzinfo=dt.UTC)),
                         to_us(dt.datetime(2026, 12, 1, tzinfo=dt.UTC)), to_us(AS_OF))  # fmt: skip


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ledger `payoff demo` builds (its charts and simulation left out)."""
    path = tmp_path_factory.mktemp("advise") / "demo.db"
    store = open_store(path)
    console = Console(file=io.StringIO())
    demo.run(store, Catalog(), seed=7, customers=6, month="2026-11", console=console)
    store.close()
    return path


def _advise(ledger: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["--db", str(ledger), "advise", "--period", "2026-11",
                                      "--as-of", AS_OF_TEXT, "--json", *args])  # fmt: skip
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def _demo_trials(store: Store, price_nanousd: int) -> list[tuple[int, int, int]]:
    """(hidden tokens, cost, revenue) of each support ticket, read another way: the task
    list's totals and each outcome's lifecycle, priced at the demo plan's 0.99."""
    tickets = [t for t in store.tasks(limit=10**6) if t.type == "support.ticket"]
    claims = store.list_outcome_claims(limit=10**6)
    verified = Counter(
        s.outcome.task
        for s in states(store, claims, to_us(AS_OF))
        if s.lifecycle.status == "verified"
    )
    return [(t.tokens_hidden, t.cost_nanousd, price_nanousd * verified[t.id]) for t in tickets]


def _brute_force(trials: list[tuple[int, int, int]], budget: int) -> Fraction:
    """A budget's margin in nano-USD, task by task, in exact fractions."""
    return sum(
        (Fraction(revenue - cost) if hidden <= budget else -Fraction(cost * budget, hidden)
         for hidden, cost, revenue in trials),
        Fraction(0),
    )  # fmt: skip


def _nanousd(text: str) -> int:
    return int(Decimal(text).scaleb(9))


def test_the_demo_budget_is_the_best_of_every_budget_brute_forced(demo_ledger: Path) -> None:
    result = _advise(demo_ledger, "--type", "support.ticket")
    store = open_store(demo_ledger, create=False)
    trials = _demo_trials(store, 990_000_000)
    store.close()
    budgets = sorted({0, *(hidden for hidden, _, _ in trials)})
    exact = {budget: _brute_force(trials, budget) for budget in budgets}
    best = max(budgets, key=lambda budget: (exact[budget], budget))
    chosen = result["recommended"]
    assert chosen["tokens_hidden_max"] == best
    # The demo's runaway runs are cut: the budget is below the largest task, and pays.
    assert not chosen["uncapped"] and chosen["tasks_cut"] > 0
    assert best < max(budgets) and exact[best] > exact[max(budgets)]
    assert Decimal(chosen["gain_per_task_low_usd"]) > 0
    assert chosen["outcomes_verified"] == result["uncapped"]["outcomes_verified"]  # none cut
    tasks = len(trials)
    assert result["tasks"] == tasks
    assert result["prices"] == [
        {"source": "plan demo-outcomes@1, charge resolved", "price_usd": "0.99", "rate": None}
    ]
    for figures, budget in ((chosen, best), (result["uncapped"], max(budgets))):
        # Within a nano-USD: a cut task's cost per token is kept to 10**-12 of one.
        expected = round(exact[budget] / tasks)
        assert abs(_nanousd(figures["margin_per_task_usd"]) - expected) <= 1
    margin = _nanousd(chosen["margin_per_task_usd"])
    assert _nanousd(chosen["margin_per_task_low_usd"]) < margin
    assert margin < _nanousd(chosen["margin_per_task_high_usd"])
    assert sum(band["tasks"] for band in result["bands"]) == tasks
    assert sum(band["tasks_verified"] for band in result["bands"]) == result["tasks_verified"]
    cost = sum(cost for _, cost, _ in trials)
    assert _nanousd(result["cost_usd"]) == cost
    per_outcome = round_div_half_even(cost, result["outcomes_verified"])
    assert _nanousd(result["uncapped"]["cost_per_verified_outcome_usd"]) == per_outcome


def test_a_percentage_charge_prices_each_outcome_by_its_value(demo_ledger: Path) -> None:
    result = _advise(demo_ledger, "--type", "coding.change", "--customer", "globex")
    assert result["customer"] == "globex" and result["tasks"] > 0
    assert result["prices"] == [
        {"source": "plan demo-outcomes@1, charge merges", "price_usd": None, "rate": "0.05"}
    ]
    # A merged change is worth 50.00: 5 % of it, 2.50 each.
    assert Decimal(result["revenue_usd"]) == Decimal("2.5") * result["outcomes_verified"]
    fixed = _advise(demo_ledger, "--type", "coding.change", "--customer", "globex",
                    "--price", "4")  # fmt: skip
    assert fixed["prices"] == [{"source": "--price", "price_usd": "4", "rate": None}]
    assert Decimal(fixed["revenue_usd"]) == 4 * result["outcomes_verified"]


def test_the_table_the_chart_and_the_same_answer_twice(demo_ledger: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["--db", str(demo_ledger), "advise", "--period", "2026-11", "--type",
            "research.report", "--as-of", AS_OF_TEXT]  # fmt: skip
    svg, png = tmp_path / "advice.svg", tmp_path / "advice.png"
    shown = runner.invoke(app, [*args, "--chart", str(svg)])
    assert shown.exit_code == 0, shown.output
    for words in ("Outcome rate by hidden tokens per task", "Recommended:", "Gain over no cap",
                  "95 % interval", f"chart: {svg}"):  # fmt: skip
        assert words in shown.output
    ET.parse(svg)  # a well-formed SVG
    first = svg.read_bytes()
    assert runner.invoke(app, [*args, "--chart", str(svg)]).exit_code == 0
    assert svg.read_bytes() == first
    assert runner.invoke(app, [*args, "--chart", str(png)]).exit_code == 0
    assert matplotlib.image.imread(png).shape[2] in (3, 4)
    assert _advise(demo_ledger, "--type", "research.report") == _advise(
        demo_ledger, "--type", "research.report"
    )


def test_advice_never_writes_the_ledger(demo_ledger: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    copy.write_bytes(demo_ledger.read_bytes())
    before = copy.read_bytes()
    _advise(copy, "--type", "support.ticket")
    assert copy.read_bytes() == before


# -- the per-task reads ----------------------------------------------------------------------


def test_each_task_sums_its_steps_as_of_a_time(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    ingest(
        usage("a1", task="a", task_type="support.ticket", input_tokens=1000, output_tokens=300,
              reasoning_tokens=100),
        usage("a2", task="a", input_tokens=2000, output_tokens=500, reasoning_tokens=200,
              visible=True),
        usage("b1", task="b", task_type="support.ticket", input_tokens=10, output_tokens=5),
        usage("c1", task="c", task_type="research.report"),
        usage("d1", task="d", task_type="support.ticket", time="2026-10-31T23:59:59Z"),
    )  # fmt: skip
    between = store.committed_now_us(now_us)
    ingest(usage("a3", task="a", input_tokens=7, output_tokens=1))
    selection = NOVEMBER
    rows = {row.task: row for row in store.task_trials(selection)}
    assert set(rows) == {"a", "b"}  # c is another type; d started in October
    # Hidden: every token but the visible output (output less reasoning of visible steps).
    assert rows["a"].tokens_hidden == 1300 + 2500 - 300 + 8
    assert (rows["a"].steps, rows["b"].tokens_hidden) == (3, 15)
    earlier = {row.task: row for row in store.task_trials(selection._replace(as_of_us=between))}
    assert earlier["a"].tokens_hidden == 1300 + 2500 - 300 and earlier["a"].steps == 2
    assert [r.task for r in store.task_trials(selection._replace(customer="nobody"))] == []


def test_a_tasks_cost_is_summed_exactly_past_64_bits(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    steps = [tool_usage(f"s{i}", task="big", task_type="support.ticket", cost="999999999")
             for i in range(11)]  # fmt: skip
    ingest(*steps, usage("u", task="big", model="no-such-model"))
    (row,) = store.task_trials(NOVEMBER)
    assert row.cost_nanousd == 11 * 999_999_999 * 10**9 > 2**63
    assert row.unpriced_steps == 1


# -- edge cases, in words ------------------------------------------------------------------


def _tickets(ingest: Callable[..., IngestReport], count: int, verdict: str | None) -> None:
    records: list[dict[str, Any]] = []
    for i in range(count):
        records.append(usage(f"u{i}", task=f"t{i}", task_type="support.ticket",
                             input_tokens=1000 + 100 * i))  # fmt: skip
        records.append(outcome(f"o{i}", f"t{i}"))
        if verdict is not None:
            records.append(attestation(f"v{i}", f"o{i}", verdict))
    ingest(*records)


def test_no_tasks_is_refused_in_words(store: Store) -> None:
    refusal = r"no tasks of type 'support.ticket' of customer 'acme' started in 2026-11"
    with pytest.raises(advice.AdviceError, match=refusal):
        advice.advise(store, "2026-11", "support.ticket", "acme", as_of_us=to_us(AS_OF))
    with pytest.raises(advice.AdviceError, match="YYYY-MM"):
        advice.advise(store, "2026-13", "support.ticket")


def test_no_verified_outcome_recommends_nothing_and_says_why(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    plans.apply_plan_text(store, OUTCOME_PLAN, "test plan")
    plans.subscribe(store, "acme", "outcomes", dt.date(2026, 11, 1))
    _tickets(ingest, 30, "reject")
    result = advice.advise(store, "2026-11", "support.ticket", as_of_us=to_us(AS_OF))
    assert result["recommended"] is None and result["tasks_verified"] == 0
    assert any("No budget is recommended" in note for note in result["notes"])
    assert result["bands"][0]["outcome_rate"] == "0.0000"
    assert result["uncapped"]["cost_per_verified_outcome_usd"] is None


def test_a_single_band_and_pending_claims_are_said(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    # Claims wait for the customer's verdict, however long.
    waiting = OUTCOME_PLAN.replace("    accept_after_days: 7\n", "")
    plans.apply_plan_text(store, waiting, "test plan")
    plans.subscribe(store, "acme", "outcomes", dt.date(2026, 11, 1))
    _tickets(ingest, 6, "accept")
    ingest(usage("p1", task="p", task_type="support.ticket"), outcome("op", "p"))
    result = advice.advise(store, "2026-11", "support.ticket", as_of_us=to_us(AS_OF))
    assert len(result["bands"]) == 1 and result["outcomes_pending"] == 1
    notes = " ".join(result["notes"])
    assert "one band (fewer than 20 tasks)" in notes and "wait for a verdict" in notes
    assert result["recommended"] is not None
    assert result["prices"][0]["source"] == "plan outcomes@1, charge resolved"


def test_an_outcome_no_charge_counts_earns_nothing_and_is_said(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    _tickets(ingest, 3, "accept")  # no plan: a claim counts when made, and has no price
    result = advice.advise(store, "2026-11", "support.ticket", as_of_us=to_us(AS_OF))
    assert result["outcomes_unpriced"] == 3 and result["prices"] == []
    assert result["recommended"] is None
    assert any("no outcome charge of their customer's plan" in n for n in result["notes"])
    half = per_outcome(Decimal("0.5"), "a contract")
    priced = advice.advise(store, "2026-11", "support.ticket", price=half,
                           as_of_us=to_us(AS_OF))  # fmt: skip
    assert priced["outcomes_unpriced"] == 0 and priced["revenue_usd"] == "1.500000000"
    assert priced["prices"] == [{"source": "a contract", "price_usd": "0.5", "rate": None}]


def test_a_tiered_charge_is_refused_with_what_to_do(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    volume = 'model: volume\n    tiers: [{up_to: null, unit_price: "1"}]'
    tiered = OUTCOME_PLAN.replace('model: per_unit\n    unit_price: "1.00"', volume)
    plans.apply_plan_text(store, tiered, "tiered plan")
    plans.subscribe(store, "acme", "outcomes", dt.date(2026, 11, 1))
    _tickets(ingest, 2, "accept")
    with pytest.raises(advice.AdviceError, match=r"charge resolved: a volume charge .*--price"):
        advice.advise(store, "2026-11", "support.ticket", as_of_us=to_us(AS_OF))


def test_the_command_names_what_is_wrong(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    open_store(ledger).close()
    runner = CliRunner()
    base = ["--db", str(ledger), "advise", "--period", "2026-11", "--type", "support.ticket"]
    price = runner.invoke(app, [*base, "--price", "ten"])
    assert price.exit_code == 2 and "--price" in price.output
    assert "'ten' is not a decimal number" in price.output
    chart = runner.invoke(app, [*base, "--chart", str(tmp_path / "x.gif")])
    assert chart.exit_code == 2 and "--chart" in chart.output
    month = runner.invoke(app, [*base[:4], "2026-13", *base[5:]])
    assert month.exit_code == 2 and "--period" in month.output


@pytest.mark.slow
def test_the_command_refuses_a_type_without_tasks_in_one_line(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    open_store(ledger).close()
    done = subprocess.run(
        [sys.executable, "-m", "payoff", "--db", str(ledger), "advise", "--period", "2026-11",
         "--type", "support.ticket", "--customer", "acme"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(
        "error: no tasks of type 'support.ticket' of customer 'acme' started in 2026-11"
    )
    assert "Traceback" not in done.stderr


def test_a_contract_restricts_the_advice_to_the_outcomes_judged_under_it(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    """acme's plan prices support.resolution@1 at 0.99; globex's charge has its own settings
    at 1.00. Under the contract: acme's tasks only, each verified outcome at 0.99."""
    contracts.apply_contract_text(store, RESOLUTION_CONTRACT, "contract")
    plans.apply_plan_text(store, plan_text("support.resolution@1"), "contract plan")
    plans.apply_plan_text(store, OUTCOME_PLAN, "own plan")
    plans.subscribe(store, "acme", "by-contract", dt.date(2026, 11, 1))
    plans.subscribe(store, "globex", "outcomes", dt.date(2026, 11, 1))
    records: list[dict[str, Any]] = []
    for i, customer in enumerate(["acme"] * 4 + ["globex"] * 6):
        records += [
            usage(f"u{i}", task=f"t{i}", task_type="support.ticket", customer=customer,
                  input_tokens=1000 + 100 * i),
            outcome(f"o{i}", f"t{i}", customer),
            attestation(f"v{i}", f"o{i}", "accept"),
        ]  # fmt: skip
    assert ingest(*records).rejected == 0
    everyone = advice.advise(store, "2026-11", "support.ticket", as_of_us=to_us(AS_OF))
    assert everyone["tasks"] == 10 and everyone["contract"] is None
    assert everyone["revenue_usd"] == "9.960000000"  # 4 x 0.99 + 6 x 1.00
    under = advice.advise(store, "2026-11", "support.ticket", as_of_us=to_us(AS_OF),
                          contract="support.resolution")  # fmt: skip
    assert under["contract"] == "support.resolution@1"
    assert (under["tasks"], under["tasks_verified"]) == (4, 4)
    assert under["revenue_usd"] == "3.960000000"
    assert [p["price_usd"] for p in under["prices"]] == ["0.99"]
    with pytest.raises(advice.AdviceError, match=r"no contract 'support\.refund'"):
        advice.advise(store, "2026-11", "support.ticket", contract="support.refund")
    contracts.apply_contract_text(
        store, RESOLUTION_CONTRACT.replace("version: 1", "version: 2"), "contract v2"
    )
    with pytest.raises(advice.AdviceError, match=r"no plan charge names contract support\.res"):
        advice.advise(store, "2026-11", "support.ticket", contract="support.resolution@2")


def test_the_command_names_the_contract_it_advises_under(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.db"
    store = open_store(ledger)
    contracts.apply_contract_text(store, RESOLUTION_CONTRACT, "contract")
    plans.apply_plan_text(store, plan_text("support.resolution@1"), "contract plan")
    plans.subscribe(store, "acme", "by-contract", dt.date(2026, 11, 1))
    records = [usage("u1", task="t1", task_type="support.ticket"), outcome("o1", "t1"),
               attestation("v1", "o1", "accept")]  # fmt: skip
    ingest_lines(store, [(n, json.dumps(r).encode()) for n, r in enumerate(records, 1)])
    store.close()
    base = ["--db", str(ledger), "advise", "--period", "2026-11", "--type", "support.ticket",
            "--as-of", AS_OF_TEXT, "--contract"]  # fmt: skip
    result = CliRunner().invoke(app, [*base, "support.resolution@1"])
    assert result.exit_code == 0, result.output
    assert "Contract: support.resolution@1" in result.output
    assert "Price per verified outcome: 0.99 USD" in result.output
    as_json = CliRunner().invoke(app, [*base, "support.resolution", "--json"])
    assert json.loads(as_json.stdout)["contract"] == "support.resolution@1"
    unknown = CliRunner().invoke(app, [*base, "nope"])  # the entry point prints it as error:
    assert isinstance(unknown.exception, advice.AdviceError)
    assert "no contract 'nope'" in str(unknown.exception)
