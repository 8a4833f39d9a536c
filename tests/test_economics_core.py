"""The economics core on hand-made ledgers: hand-computed numbers, no database."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payoff.core.allocation import allocate
from payoff.core.attribution import Line, TaskUnits, attribute
from payoff.core.buckets import Bucket, BucketCoster
from payoff.core.costing import PriceTable, TokenRates
from payoff.core.economics import (
    TaskFact,
    customer_figures,
    customer_periods,
    plan_lines,
    simulate_plan,
    simulate_plans,
    usage_totals,
)
from payoff.core.figures import Figures
from payoff.core.plan import Charge, Plan
from payoff.core.pricing.spec import PriceSpec
from payoff.core.scenarios import (
    ScenarioError,
    parse_scenario,
    speculative_cost_factor,
    target_passes_per_token,
)

# USD per million tokens: 1 nano-USD per token is 0.001 USD per million.
LIST = TokenRates(input_mtok=Decimal("1.00"), output_mtok=Decimal("4.00"),
                  cache_read_mtok=Decimal("0.10"))  # fmt: skip
BATCH = TokenRates(input_mtok=Decimal("0.50"), output_mtok=Decimal("2.00"))
TABLES = {
    ("openai", "m", False, 0): PriceTable.flat(LIST),
    ("openai", "m", True, 0): PriceTable.flat(BATCH),
}


def bucket(**fields: object) -> Bucket:
    base: dict[str, object] = dict(
        customer="acme", task="t1", source="catalog", provider="openai", model="m",
        batch=False, visible=False, day=0, calls=2, uncached=1000, cache_read=0,
        cache_write=0, text_output=100, reasoning=400, cost_nanousd=3_000_000,
        cost_visible_nanousd=0, unpriced=0,
    )  # fmt: skip
    base.update(fields)
    return Bucket(**base)  # type: ignore[arg-type]


HIDDEN = bucket()  # 1000 x 1000 + 500 x 4000 nano-USD
VISIBLE = bucket(visible=True, calls=1, uncached=200, text_output=50, reasoning=0,
                 cost_nanousd=400_000, cost_visible_nanousd=200_000)  # fmt: skip
TOOL = bucket(source="record", provider=None, model=None, calls=2, uncached=0, text_output=0,
              reasoning=0, cost_nanousd=5_000_000)  # fmt: skip
LEDGER = (HIDDEN, VISIBLE, TOOL)


def costs(name: str, gpu: frozenset[tuple[str, str]] = frozenset()) -> list[int]:
    scenario = parse_scenario(name)
    return [b.cost_nanousd for b in scenario.apply(LEDGER, BucketCoster(TABLES, gpu))]


def test_the_speculative_formula_gives_3_36_tokens_per_target_pass() -> None:
    passes = target_passes_per_token(Fraction("0.8"), 4)
    assert 1 / passes == Fraction("3.3616")
    assert round(Decimal(passes.denominator) / Decimal(passes.numerator), 2) == Decimal("3.36")
    assert (
        speculative_cost_factor(Fraction("0.8"), 4, Fraction("0.05")) == Fraction(12, 10) * passes
    )


@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        # half of each call's input read from the cache at 0.10 instead of 1.00
        ("s:cache_hit=0.5", [3_000_000 - 500 * 900, 400_000 - 100 * 900, 5_000_000]),
        # two of the three calls (1.5, half to even) at batch prices, by largest remainder:
        # one hidden call, 500x500 + 250x2000, the rest at list; the visible call,
        # 200x500 + 50x2000
        ("s:batch=0.5", [750_000, 1_500_000, 200_000, 5_000_000]),
        # 300 reasoning tokens cut at 4000 nano-USD each
        ("s:reasoning_cap=100", [3_000_000 - 300 * 4000, 400_000, 5_000_000]),
        # hidden steps halved, tools included; the visible answer kept
        ("s:loops=0.5", [1_500_000, 400_000, 2_500_000]),
        # no model priced by GPU time: passes fall, cost does not
        ("s:spec_accept=0.8,spec_draft=4", [3_000_000, 400_000, 5_000_000]),
    ],
)
def test_each_scenario_gives_the_hand_computed_cost(scenario: str, expected: list[int]) -> None:
    assert costs(scenario) == expected


def test_speculative_decoding_moves_the_cost_of_gpu_priced_models() -> None:
    # output part 500 x 4000 = 2,000,000 nano-USD, divided by 3.3616 tokens per pass
    got = costs("s:spec_accept=0.8,spec_draft=4", frozenset({("openai", "m")}))
    assert got[0] == 1_000_000 + round(Fraction(2_000_000) / Fraction("3.3616"))
    assert got[0] == 1_594_955  # 2,000,000 / 3.3616 = 594,954.8


def test_a_scenario_leaves_its_input_as_it_was() -> None:
    before = list(LEDGER)
    parse_scenario("s:cache_hit=1,batch=1,reasoning_cap=0,loops=2").apply(
        LEDGER, BucketCoster(TABLES)
    )
    assert list(LEDGER) == before


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("nameless", "scenario"),
        ("s:cache_hit=2", "cache_hit"),
        ("s:spec_accept=0.8", "spec_draft"),
        ("s:colour=1", "colour"),
        ("baseline:loops=1", "scenario"),
        ("s:reasoning_cap=1.5", "reasoning_cap"),
        ("s:spec_accept=1e-999999999,spec_draft=4", "spec_accept"),  # Fraction(...) would hang
        ("s:cache_hit=0." + "1" * 40, "cache_hit"),
        ("s:loops=" + "0" * 10_000 + "1", "loops"),
    ],
)
def test_bad_scenarios_name_the_parameter(text: str, field: str) -> None:
    with pytest.raises(ScenarioError, match=field):
        parse_scenario(text)


@given(st.integers(-(10**9), 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=30))
def test_allocation_sums_back_exactly(amount: int, weights: list[int]) -> None:
    if sum(weights) == 0:
        weights[0] = 1
    parts = allocate(amount, weights)
    assert sum(parts) == amount
    assert all(w > 0 or p == 0 for p, w in zip(parts, weights, strict=True))


PLAN = Plan(
    id="mixed", version=1, currency="USD", minimum=Decimal("50.00"),
    charges=(
        Charge("platform", "subscription", amount=Decimal("10.00")),
        Charge("tokens", "tokens", price=PriceSpec("per_unit", unit_price=Decimal("0.001"))),
        Charge("runs", "task", task_type="*",
               price=PriceSpec("per_unit", unit_price=Decimal("0.33"))),
        Charge("wins", "outcome", outcome="*",
               price=PriceSpec("per_unit", unit_price=Decimal("1.01"))),
    ),
)  # fmt: skip


@given(st.lists(st.tuples(st.integers(0, 10**5), st.booleans(), st.booleans()), max_size=20))
def test_attribution_sums_back_to_the_invoice(tasks: list[tuple[int, bool, bool]]) -> None:
    units = [TaskUnits(None, tokens={"input": 7})] + [
        TaskUnits(f"t{i}", "x", "completed" if done else "failed", True, {"output": tokens},
                  outcomes=(("won", Decimal(0)),) if won else ())
        for i, (tokens, done, won) in enumerate(tasks)
    ]  # fmt: skip
    lines = [
        Line("charge", Decimal("10.00"), PLAN.charges[0]),
        Line("charge", Decimal("3.17"), PLAN.charges[1]),
        Line("charge", Decimal("0.99"), PLAN.charges[2]),
        Line("true_up", Decimal("12.34")),
        Line("discount", Decimal("-5.55")),
        Line("late", Decimal("-1.00")),
    ]
    shared = attribute(lines, units, "USD")
    assert sum(shared.amounts) + shared.unattributed == sum(line.amount for line in lines)


def test_simulating_a_plan_on_a_hand_made_ledger() -> None:
    facts = {("acme", "t1"): TaskFact("x", "completed", True),
             ("acme", "t2"): TaskFact("x", "failed", True)}  # fmt: skip
    buckets = [bucket(), bucket(task="t2", cost_nanousd=1_000_000)]
    customers = customer_periods(buckets, facts, [("acme", "t1", "won", Decimal(0))])
    figures = simulate_plan(PLAN, customers, "2026-11", 30)
    # 10.00 + 2 x 1500 tokens x 0.001 + 1 completed run 0.33 + 1 outcome 1.01 = 14.34,
    # lifted to the 50.00 minimum.
    assert figures.revenue == Decimal("50.00")
    assert figures.cost_nanousd == 4_000_000
    assert figures.tasks == 2 and figures.tasks_verified == 1
    derived = figures.derived()
    assert derived["provider_risk"] == "0.0000"  # the subscription reaches every task
    assert Decimal(derived["customer_risk"]) + Decimal(derived["value_alignment"]) == 1


def test_figures_add_sums_every_field() -> None:
    names = [f.name for f in dataclasses.fields(Figures)]
    one = Figures(**{n: Decimal(i + 1) if n in MONEY else i + 1 for i, n in enumerate(names)})
    total = Figures()
    total.add(one)
    total.add(one)
    assert all(getattr(total, n) == 2 * getattr(one, n) for n in names)


MONEY = ("revenue", "revenue_late", "spend_verified")


@given(st.lists(st.tuples(st.integers(0, 10**6), st.booleans(), st.booleans(), st.booleans()),
                max_size=12))  # fmt: skip
def test_simulated_figures_are_the_task_by_task_sums(
    tasks: list[tuple[int, bool, bool, bool]],
) -> None:
    facts = {("acme", f"t{i}"): TaskFact("x", "completed" if done else "failed", ended)
             for i, (_, done, ended, _) in enumerate(tasks)}  # fmt: skip
    buckets = [bucket(task=f"t{i}", cost_nanousd=cost, visible=i % 2 == 0)
               for i, (cost, _, _, _) in enumerate(tasks)] + [bucket(task=None)]  # fmt: skip
    outcomes = [("acme", f"t{i}", "won", Decimal(0)) for i, t in enumerate(tasks) if t[3]]
    customers = customer_periods(buckets, facts, outcomes)
    expected = Figures()
    for ledger in customers.values():
        lines = plan_lines(PLAN, usage_totals(ledger, PLAN, 30), "2026-11")
        for row in customer_figures(ledger, attribute(lines, ledger.units, "USD")):
            expected.add(row)
    assert simulate_plans([PLAN, PLAN], customers, "2026-11", 30) == [expected, expected]


# Many one-call buckets, as the ledger has them (task x model x day): half of 40 calls.
ONE_CALL = [
    bucket(customer=f"c{i % 3}", task=f"t{i}", calls=1, uncached=100, text_output=10,
           reasoning=40, cost_nanousd=260_000)
    for i in range(40)
]  # fmt: skip


def test_batch_moves_its_share_of_the_calls_over_the_ledger_not_per_bucket() -> None:
    after = parse_scenario("s:batch=0.5").apply(ONE_CALL, BucketCoster(TABLES))
    moved = [b for b in after if b.batch]
    assert sum(b.calls for b in moved) == 20
    assert sum(b.tokens for b in moved) == sum(b.tokens for b in ONE_CALL) // 2
    assert sum(b.calls for b in after) == 40 and sum(b.tokens for b in after) == 6000
    assert not [b for b in after if b.calls == 0]
    # Each customer moves its own share to a call: 14, 13 and 13 calls give 7, 6.5 and 6.5,
    # the call left over to the earlier of the equal remainders.
    per_customer = {c: sum(b.calls for b in moved if b.customer == c) for c in ("c0", "c1", "c2")}
    assert per_customer == {"c0": 7, "c1": 7, "c2": 6}


def test_loops_scale_hidden_steps_over_the_ledger_and_leave_no_call_less_tokens() -> None:
    after = parse_scenario("s:loops=0.5").apply(ONE_CALL, BucketCoster(TABLES))
    assert sum(b.calls for b in after) == 20
    assert sum(b.tokens for b in after) == sum(b.tokens for b in ONE_CALL) // 2
    assert not [b for b in after if b.calls == 0 and (b.tokens or b.cost_nanousd)]
    more = parse_scenario("s:loops=1.5").apply(ONE_CALL, BucketCoster(TABLES))
    assert sum(b.calls for b in more) == 60
    assert sum(b.tokens for b in more) == sum(b.tokens for b in ONE_CALL) * 3 // 2


def test_risks_stay_within_0_and_1_when_a_late_line_lowers_the_revenue() -> None:
    # Two verified tasks share a 10.00 outcome line; a late credit of -5.00 (an earlier
    # period's reversal) is part of the revenue but of no task's spend.
    facts = {("acme", t): TaskFact("x", "completed", True) for t in ("t1", "t2")}
    won = [("acme", t, "ok", Decimal(0)) for t in ("t1", "t2")]
    ledger = customer_periods([bucket(task="t1"), bucket(task="t2")], facts, won)["acme"]
    wins = Charge("wins", "outcome", outcome="ok",
                  price=PriceSpec("per_unit", unit_price=Decimal("5.00")))  # fmt: skip
    lines = [Line("charge", Decimal("10.00"), wins), Line("late", Decimal("-5.00"))]
    total = Figures()
    for row in customer_figures(ledger, attribute(lines, ledger.units, "USD")):
        total.add(row)
    derived = total.derived()
    assert derived["customer_risk"] == "0.0000" and derived["value_alignment"] == "1.0000"
    assert derived["revenue_usd"] == "5.00" and derived["late_revenue_usd"] == "-5.00"


def test_visible_cost_is_split_and_repriced_with_the_cost() -> None:
    answer = bucket(visible=True, calls=2, uncached=400, text_output=100, reasoning=0,
                    cost_nanousd=800_000, cost_visible_nanousd=400_000)  # fmt: skip
    moved, rest = parse_scenario("s:batch=0.5").apply([answer], BucketCoster(TABLES))
    assert moved.batch and not rest.batch
    assert moved.cost_visible_nanousd == 50 * 2000  # the moved half's text at batch price
    assert rest.cost_visible_nanousd == 50 * 4000  # the half left, at list price
    # Speculative decoding on a model priced by GPU time: the output costs 1/3.3616 as much.
    (fast,) = parse_scenario("s:spec_accept=0.8,spec_draft=4").apply(
        [answer], BucketCoster(TABLES, frozenset({("openai", "m")}))
    )
    assert fast.cost_visible_nanousd == round(Fraction(400_000) / Fraction("3.3616"))
    for name in ("s:cache_hit=1", "s:batch=1", "s:loops=3", "s:reasoning_cap=0"):
        for b in parse_scenario(name).apply([*LEDGER, answer], BucketCoster(TABLES)):
            assert 0 <= b.cost_visible_nanousd <= b.cost_nanousd, name


def test_cache_hit_changes_nothing_on_a_model_without_a_cache_read_price() -> None:
    plain = PriceTable.flat(TokenRates(input_mtok=Decimal("1.00"), output_mtok=Decimal("4.00")))
    tables = {("openai", "nocache", False, 0): plain}
    no_cache = bucket(model="nocache", uncached=1000, cache_read=0)
    assert parse_scenario("s:cache_hit=0.9").apply([no_cache], BucketCoster(tables)) == [no_cache]
    unknown = bucket(model="unknown")  # no price table at all: no change either
    assert parse_scenario("s:cache_hit=0.9").apply([unknown], BucketCoster(tables)) == [unknown]
