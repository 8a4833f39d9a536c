"""`payoff tables`: the two published tables of AI pricing, recomputed from the ledger.

One simulation prices the period with every customer on each of four pricing models
(`PRICING_MODELS`), under the scenarios each technique needs: speculative decoding against
the ledger as it is; chain-of-thought, agent loops and prompt caching as the ledger is
against the ledger without them (no reasoning, no hidden steps, no cache reads). Read only.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any

from payoff.catalog import Catalog
from payoff.core.figures import ratio
from payoff.core.published import (
    ALIGNMENT_THRESHOLDS,
    FEWER_PASSES_PUBLISHED,
    PUBLISHED_MODELS,
    PUBLISHED_TECHNIQUES,
    RISK_THRESHOLDS,
    PublishedTechnique,
    compare_model,
    percent,
    share,
)
from payoff.core.scenarios import Scenario, ScenarioError, parse_scenario, target_passes_per_token
from payoff.plan_files import parse_plan
from payoff.service.economics import EconomicsError, simulate
from payoff.store.protocol import RatingStore

SUBSCRIPTION_PLAN = """
id: subscription
version: 1
currency: USD
charges:
  - {name: platform, type: subscription, amount: "299.00"}
"""


def _pricing_models() -> dict[str, str]:
    """The four pricing models of the published table, as plans (the demo's, which are
    examples/plans/*.yaml, and a flat subscription)."""
    from payoff.demo import COMPARED_PLANS

    return {
        "per-token": COMPARED_PLANS["cost-plus"],
        "per-task": COMPARED_PLANS["per-task"],
        "per-outcome": COMPARED_PLANS["per-outcome"],
        "subscription": SUBSCRIPTION_PLAN,
    }


DEFAULT_SCENARIOS = {
    "speculative": (
        "speculative:spec_accept=0.8,spec_draft=4,draft_cost=0.05,price_tracks_cost=true"
    ),
    "cache": None,  # the ledger's own cache hit rate, unless --scenario cache:cache_hit=H
}
"""The assumptions `--scenario NAME:...` may replace, by name."""
COUNTERFACTUALS = (
    "without-reasoning:reasoning_cap=0",
    "without-loops:loops=0",
    "without-cache:cache_hit=0",
)


def assumptions(texts: Sequence[str]) -> dict[str, Scenario]:
    """The speculative and cache assumptions, with `--scenario` overrides by name."""
    chosen: dict[str, Scenario] = {}
    for name, text in DEFAULT_SCENARIOS.items():
        if text is not None:
            chosen[name] = parse_scenario(text)
    for text in texts:
        try:
            scenario = parse_scenario(_over_default(text))
        except ScenarioError as exc:
            raise EconomicsError(str(exc)) from None
        if scenario.name not in DEFAULT_SCENARIOS:
            raise EconomicsError(
                f"scenario {scenario.name!r}: tables takes "
                f"{' or '.join(DEFAULT_SCENARIOS)} (NAME:key=value,...)"
            )
        wanted = "spec_accept" if scenario.name == "speculative" else "cache_hit"
        if wanted not in scenario.params or len(scenario.techniques()) != 1:
            raise EconomicsError(
                f"scenario {scenario.name!r}: give {wanted}, and no other technique"
            )
        chosen[scenario.name] = scenario
    return chosen


def _over_default(text: str) -> str:
    """`--scenario NAME:...` with the default's parameters it does not give: replacing the
    acceptance rate keeps the drafted tokens and the draft's cost as assumed."""
    name, _, body = text.partition(":")
    default = DEFAULT_SCENARIOS.get(name.strip())
    if default is None:
        return text
    given = {item.partition("=")[0].strip() for item in body.split(",")}
    kept = [
        item for item in default.partition(":")[2].split(",") if item.partition("=")[0] not in given
    ]
    return ",".join([text, *kept]) if kept else text


def tables(
    store: RatingStore,
    label: str,
    catalog: Catalog,
    scenario_texts: Sequence[str] = (),
    as_of_us: int | None = None,
) -> dict[str, Any]:
    """Both tables of the period, each row beside the published estimate."""
    chosen = assumptions(scenario_texts)
    models = _pricing_models()
    plans = [parse_plan(text, f"pricing model {name}")[0] for name, text in models.items()]
    names = dict(zip([f"{p.id}@{p.version}" for p in plans], models, strict=True))
    scenarios = [
        Scenario("baseline"),
        *chosen.values(),
        *(parse_scenario(text) for text in COUNTERFACTUALS),
    ]
    result = simulate(store, label, plans, scenarios, catalog, as_of_us)
    runs = {
        run["scenario"]: {
            "usage": run["usage"],
            "plans": {names[plan]: figures for plan, figures in run["plans"].items()},
        }
        for run in result["scenarios"]
    }
    base = runs["baseline"]
    plan_of = {model: plan for plan, model in names.items()}
    model_rows = []
    for published in PUBLISHED_MODELS:
        figures = base["plans"][published.name]
        measures = ("provider_risk", "customer_risk", "value_alignment")
        silent = not Decimal(figures["revenue_usd"]) and bool(Decimal(figures["cost_usd"]))
        row = compare_model(
            published, {key: _decimal(figures[key]) for key in measures}, bills_nothing=silent
        )
        row |= {"plan": plan_of[published.name], "margin_share": figures["margin_share"]}
        model_rows.append(row)
    pairs = {
        "speculative decoding": (runs["speculative"], base),
        "chain-of-thought": (base, runs["without-reasoning"]),
        "agent loops": (base, runs["without-loops"]),
        "prompt caching": (runs.get("cache", base), runs["without-cache"]),
    }
    technique_rows = [
        _technique(published, *pairs[published.name], chosen) for published in PUBLISHED_TECHNIQUES
    ]
    return {
        "period": label,
        "empty": not Decimal(base["usage"]["cost_usd"]) and not base["usage"]["target_passes"],
        "pricing_models": model_rows,
        "techniques": technique_rows,
        "thresholds": {
            "risk": {word: format(bound, "f") for bound, word in RISK_THRESHOLDS},
            "value_alignment": {word: format(bound, "f") for bound, word in ALIGNMENT_THRESHOLDS},
        },
    }


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def _change(now: Decimal | int, before: Decimal | int) -> Decimal | None:
    return ratio(Decimal(now) - Decimal(before), abs(Decimal(before)))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _figures(with_: dict[str, Any], without: dict[str, Any]) -> dict[str, Decimal | None]:
    """Every figure a published claim names, as a change from `without` to `with_`."""
    per_token_with, per_token_without = with_["plans"]["per-token"], without["plans"]["per-token"]
    figures: dict[str, Decimal | None] = {
        "target_passes": _change(
            with_["usage"]["target_passes"], without["usage"]["target_passes"]
        ),
        "tokens_visible": _change(
            per_token_with["tokens_visible"], per_token_without["tokens_visible"]
        ),
        "tokens_hidden": _change(
            per_token_with["tokens_hidden"], per_token_without["tokens_hidden"]
        ),
        "cost": _change(Decimal(with_["usage"]["cost_usd"]), Decimal(without["usage"]["cost_usd"])),
    }
    for model in with_["plans"]:
        figures[f"revenue {model}"] = _change(
            Decimal(with_["plans"][model]["revenue_usd"]),
            Decimal(without["plans"][model]["revenue_usd"]),
        )
        figures[f"margin {model}"] = _change(
            Decimal(with_["plans"][model]["margin_usd"]),
            Decimal(without["plans"][model]["margin_usd"]),
        )
    return figures


def _technique(
    published: PublishedTechnique,
    with_: dict[str, Any],
    without: dict[str, Any],
    chosen: dict[str, Scenario],
) -> dict[str, Any]:
    figures = _figures(with_, without)
    claims = []
    for claim in published.claims:
        value = figures[claim.figure]
        verdict = claim.verdict(value)
        claim_row: dict[str, Any] = {
            "figure": claim.figure,
            "published": claim.text,
            "ledger": _text(value),
            "verdict": verdict,
        }
        if verdict not in ("agrees", "no figure"):
            claim_row["why"] = _why(published.name, claim.figure, figures, with_, without, chosen)
        claims.append(claim_row)
    models = list(with_["plans"])
    return {
        "technique": published.name,
        "cost_change": _text(figures["cost"]),
        "tokens_hidden_change": _text(figures["tokens_hidden"]),
        "target_passes_change": _text(figures["target_passes"]),
        "revenue_change": {model: _text(figures[f"revenue {model}"]) for model in models},
        "margin_change": {model: _text(figures[f"margin {model}"]) for model in models},
        "claims": claims,
        "depends_on": _depends_on(published, chosen, with_, without),
    }


def _cache_hit(with_: dict[str, Any], without: dict[str, Any]) -> Decimal | None:
    """Cache reads over what the input would have been read at full price without them."""
    full = without["usage"]["tokens_uncached_input"]
    return ratio(full - with_["usage"]["tokens_uncached_input"], full)


def _depends_on(
    published: PublishedTechnique,
    chosen: dict[str, Scenario],
    with_: dict[str, Any],
    without: dict[str, Any],
) -> dict[str, str | None]:
    """The assumptions the row rests on, with the values used (`--scenario` replaces them)."""
    if "cache_hit" in published.depends_on:
        given = chosen.get("cache")
        hit = given.params["cache_hit"] if given is not None else _cache_hit(with_, without)
        return {"cache_hit": _text(hit)}
    if published.depends_on:
        params = chosen["speculative"].params
        return {key: _text(params.get(key)) for key in published.depends_on}
    return {}


def _why(
    technique: str,
    figure: str,
    figures: dict[str, Decimal | None],
    with_: dict[str, Any],
    without: dict[str, Any],
    chosen: dict[str, Scenario],
) -> str:
    """Why this ledger's figure differs from the published one, in a sentence."""
    cost = percent(figures["cost"])
    if technique == "speculative decoding":
        params = chosen["speculative"].params
        passes = target_passes_per_token(Fraction(params["spec_accept"]), int(params["spec_draft"]))
        if figure == "target_passes":
            saved = figures[figure]
            more = saved is not None and saved < FEWER_PASSES_PUBLISHED[0]
            return (
                f"at an acceptance rate of {params['spec_accept']} and {params['spec_draft']} "
                f"drafted tokens the large model makes "
                f"{ratio(passes.numerator, passes.denominator)} passes per output "
                f"token (Leviathan et al.), {percent(saved)}: the published range assumes "
                + ("lower acceptance or fewer drafted tokens" if more else "higher acceptance")
            )
        if not figures["cost"]:
            return (
                "no model of this ledger is priced by GPU time (or none the catalog prices "
                "so: see --prices), so fewer passes save nothing here (cost 0 %)"
            )
        return (
            f"only the output of models priced by GPU time gets cheaper (cost {cost}); "
            "per-token pricing here is cost plus a markup, so its revenue follows the cost"
        )
    if technique == "prompt caching" and figure.startswith("revenue"):
        return (
            f"per-token pricing here is cost plus a markup, so its revenue falls as the cost "
            f"does ({cost}): over the whole period, not per cached hit"
        )
    if technique == "prompt caching":
        hit = _cache_hit(with_, without)
        return (
            f"the whole period's cost, not one repeated prompt: {share(hit)} of the input "
            "that would be read at full price is read from the cache, at the cache prices of "
            f"the ledger's models (cost {cost})"
        )
    if figure == "tokens_hidden" and technique == "chain-of-thought":
        visible = with_["plans"]["per-token"]["tokens_visible"]
        reasoning = ratio(with_["usage"]["tokens_reasoning"], visible)
        return (
            "most hidden tokens here are context re-read by every call, which reasoning does "
            f"not add to; counted against the visible output alone, reasoning is "
            f"{share(reasoning)} of it"
        )
    if figure == "tokens_hidden":
        return (
            "a run without its hidden steps still reads its whole context once, in its "
            f"visible answer: the loops add {percent(figures[figure])} to that, not to the "
            "visible output alone"
        )
    if figure == "revenue per-token" and technique == "chain-of-thought":
        return (
            "per-token pricing here bills every token, hidden ones too (cost plus a markup), "
            f"so revenue follows the cost ({percent(figures[figure])}); the published flat "
            "revenue holds where only the visible output is billed"
        )
    if figure.startswith("revenue"):
        return f"this pricing model bills what {technique} adds ({percent(figures[figure])})"
    return f"the ledger's figure is {percent(figures[figure])}"
