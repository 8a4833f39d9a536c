"""Budget advice in the pure core: every budget against a brute force in exact fractions,
bands, intervals and the bootstrap, without a database."""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from payoff.core.advice import BANDS_MAX, SEED, advise, bands, resamples_for
from payoff.core.budgets import SCALE, Trial, best, curve, margins, ordered
from payoff.core.intervals import bootstrap_totals, resample, wilson
from payoff.core.outcome_prices import PriceError, from_charge, per_outcome
from payoff.core.plan import Charge
from payoff.core.pricing.spec import PriceSpec, Tier


def exact_margin(trials: list[Trial], budget: int) -> Fraction:
    """The model, read off docs/economics.md task by task, in exact fractions (nano-USD):
    a task within the budget earns and costs what it did; one above it earns nothing and
    costs its cost x budget / hidden tokens."""
    total = Fraction(0)
    for t in trials:
        if t.tokens_hidden <= budget:
            total += t.revenue_nanousd - t.cost_nanousd
        else:
            total -= Fraction(t.cost_nanousd * budget, t.tokens_hidden)
    return total


trial_lists = st.lists(
    st.builds(
        Trial,
        tokens_hidden=st.integers(0, 60),
        cost_nanousd=st.integers(0, 10**7),
        revenue_nanousd=st.integers(0, 10**7),
        outcomes_verified=st.integers(0, 2),
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(trial_lists)
def test_the_best_budget_is_the_best_of_every_budget_brute_forced(trials: list[Trial]) -> None:
    found = ordered(trials)
    budgets = curve(found)
    chosen = best(budgets)
    top = max(t.tokens_hidden for t in trials)
    # Every whole budget from 0 to beyond the largest task, not only the candidates.
    exact = {b: exact_margin(found, b) for b in range(top + 2)}
    # A cut task's rate is rounded once: at most half a unit of SCALE x nano-USD per token.
    slack = Fraction(len(trials) * top, 2 * SCALE)
    assert exact_margin(found, chosen.tokens_hidden_max) >= max(exact.values()) - 2 * slack
    for budget in budgets:  # each candidate's figure is its exact margin, to the rounding
        assert abs(Fraction(budget.margin_scaled, SCALE) - exact[budget.tokens_hidden_max]) <= slack
        assert sum(margins(found, budget.tokens_hidden_max)) == budget.margin_scaled
    assert budgets[-1].tokens_hidden_max == top and budgets[-1].tasks_cut == 0
    candidates = [b.tokens_hidden_max for b in budgets]
    assert candidates == sorted({0, *(t.tokens_hidden for t in trials)})


def test_a_budget_cuts_runaway_runs_and_keeps_every_success() -> None:
    successes = [Trial(100 + i, 10 * (100 + i), 5000, 1) for i in range(50)]
    runaways = [Trial(1000 + i, 10 * (1000 + i), 0, 0) for i in range(10)]
    advice = advise([*runaways, *successes])
    chosen = advice.recommended
    assert chosen is not None and chosen.tokens_hidden_max == 149
    assert (chosen.tasks_cut, chosen.tasks_verified) == (10, 50)
    figures = advice.as_json()["recommended"]
    # Each runaway costs 10 x 149 at the cut instead of 10 x its hidden tokens.
    saved = sum(10 * (1000 + i) - 10 * 149 for i in range(10))
    assert Decimal(figures["gain_per_task_usd"]) == Decimal(round(Fraction(saved, 60))) / 10**9
    assert Decimal(figures["gain_per_task_low_usd"]) > 0
    assert figures["uncapped"] is False and figures["outcome_rate"] == "1.0000"
    low, high = figures["margin_per_task_low_usd"], figures["margin_per_task_high_usd"]
    assert Decimal(low) <= Decimal(figures["margin_per_task_usd"]) <= Decimal(high)


def test_the_same_tasks_in_any_order_give_the_same_advice() -> None:
    trials = [Trial(h, 7 * h + 3, 900 if h % 3 else 0, 1 if h % 3 else 0) for h in range(1, 90)]
    first = advise(trials).as_json()
    assert advise(list(reversed(trials))).as_json() == first
    assert first["bootstrap"] == {"resamples": 1000, "seed": SEED, "confidence": "0.95"}


def test_notes_say_when_nothing_was_earned_and_when_nothing_pays() -> None:
    nothing = advise([Trial(10, 50, 0, 0), Trial(20, 80, 0, 0)])
    assert nothing.recommended is None and nothing.as_json()["recommended"] is None
    assert any("No budget is recommended" in n for n in nothing.notes())
    losing = advise([Trial(10, 500, 100, 1), Trial(20, 800, 100, 1)])
    assert losing.recommended is not None and losing.recommended.tokens_hidden_max == 0
    assert any("no budget has a positive margin" in n for n in losing.notes())
    paying = advise([Trial(10, 5, 100, 1), Trial(20, 8, 100, 1)])
    assert paying.recommended is paying.uncapped
    assert any(n.startswith("No cap") for n in paying.notes())


def test_a_single_band_is_said_and_still_advised() -> None:
    few = advise([Trial(10 * i, i, 50, 1) for i in range(1, 8)])
    assert len(few.bands) == 1 and few.recommended is not None
    assert any("fewer than 20 tasks" in n for n in few.notes())
    same = advise([Trial(500, i, 50, 1) for i in range(40)])
    assert len(same.bands) == 1
    assert any("every task spent the same hidden tokens" in n for n in same.notes())


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=1, max_size=300))
def test_bands_hold_every_task_once_and_never_split_a_count(hidden: list[int]) -> None:
    trials = ordered([Trial(h, h, 0, 0) for h in hidden])
    found = bands(trials)
    assert 1 <= len(found) <= BANDS_MAX
    assert [t for band in found for t in band.trials] == trials
    for before, after in itertools.pairwise(found):
        assert before.tokens_hidden_max < after.tokens_hidden_min
    for band in found:
        assert band.tokens_hidden_min == band.trials[0].tokens_hidden
        assert band.tokens_hidden_max == band.trials[-1].tokens_hidden


def test_bands_are_quintiles_of_distinct_counts() -> None:
    found = bands(ordered([Trial(h, 0, 0, 0) for h in range(100)]))
    assert [len(b.trials) for b in found] == [20] * 5
    assert (found[0].tokens_hidden_min, found[-1].tokens_hidden_max) == (0, 99)


@pytest.mark.parametrize(("successes", "trials"), [(5, 10), (0, 10), (10, 10), (1, 3), (47, 55)])
def test_wilson_interval_holds_the_exact_one(successes: int, trials: int) -> None:
    interval = wilson(successes, trials)
    assert interval is not None
    low, high = interval
    z, n, p = 1.959963984540054, trials, successes / trials
    center = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert float(low) <= max(0.0, center - half) + 1e-12 and float(low) > center - half - 1e-4
    assert float(high) >= min(1.0, center + half) - 1e-12 and float(high) < center + half + 1e-4
    assert 0 <= low <= Decimal(successes) / trials <= high <= 1


def test_wilson_at_the_edges() -> None:
    assert wilson(0, 0) is None
    assert wilson(0, 10) == (Decimal("0.0000"), Decimal("0.2776"))  # 0.27753... rounded outwards
    assert wilson(5, 10) == (Decimal("0.2365"), Decimal("0.7635"))


def test_the_bootstrap_is_reproducible_and_keyed_by_its_seed() -> None:
    assert resample(7, 1, 0) == resample(7, 1, 0)
    assert resample(7, 1, 0) != resample(7, 2, 0) or resample(7, 1, 1) != resample(7, 2, 1)
    assert all(0 <= i < 7 for i in resample(7, 1, 0))
    values = [i * i for i in range(50)]
    first = bootstrap_totals([values], SEED, 300)
    assert first == bootstrap_totals([values], SEED, 300)
    assert first != bootstrap_totals([values], SEED + 1, 300)
    ((low, high),) = first
    assert low < sum(values) < high
    assert bootstrap_totals([[4] * 9], SEED, 100) == [(36, 36)]


def test_resamples_are_bounded_by_draws() -> None:
    assert resamples_for(300) == 1000
    assert resamples_for(50_000) == 200
    assert resamples_for(20_000) == 500


def test_prices_of_one_outcome() -> None:
    assert per_outcome(Decimal("0.99"), "--price").of(None) == Decimal("0.99")
    with pytest.raises(PriceError, match="non-negative"):
        per_outcome(Decimal("-1"), "--price")
    per_thousand = Charge("c", "outcome", PriceSpec("per_unit", unit_price=Decimal(5),
                                                    per=Decimal(1000)), outcome="x")  # fmt: skip
    assert from_charge(per_thousand, "p@1", "USD").of(None) == Decimal("0.005")
    share = Charge("m", "outcome", PriceSpec("percentage", rate=Decimal("0.05"),
                                             min_per_event=Decimal(2)), outcome="x")  # fmt: skip
    price = from_charge(share, "p@1", "USD")
    assert (price.of(Decimal(200)), price.of(Decimal(10)), price.of(None)) == (10, 2, 2)
    assert price.as_json() == {"source": "plan p@1, charge m", "price_usd": None, "rate": "0.05"}
    tiers = Charge("t", "outcome", PriceSpec("volume", tiers=(Tier(None, Decimal(1)),)),
                   outcome="x")  # fmt: skip
    with pytest.raises(PriceError, match=r"charge t: a volume charge .*--price"):
        from_charge(tiers, "p@1", "USD")
    with pytest.raises(PriceError, match="currency EUR"):
        from_charge(per_thousand, "p@1", "EUR")
