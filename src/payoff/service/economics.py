"""Economics use cases: the period report from the provider's own ledger and invoices, and
the simulation of plans under scenarios. Loads aggregates from the store, calls the core;
never writes.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from payoff.catalog import Catalog
from payoff.core.attribution import Attribution, Line, TaskUnits, attribute
from payoff.core.economics import (
    CustomerLedger,
    TaskFact,
    grouped,
    ledgers,
    period_tasks,
    simulate_plans,
)
from payoff.core.errors import PayoffError
from payoff.core.figures import Figures, ratio
from payoff.core.periods import US_PER_DAY, Period
from payoff.core.plan import Charge, Plan
from payoff.core.rating import FINAL_STATUSES
from payoff.core.scenarios import BASELINE, Scenario, ScenarioError, parse_scenario
from payoff.core.usage import CATALOG, Bucket, PriceKey, Pricer
from payoff.plans import load_plan
from payoff.service.billing import find_plan, plan_of
from payoff.service.clock import now_us
from payoff.service.outcomes import verified_in
from payoff.store.protocol import Store

GROUPINGS = ("customer", "plan", "task_type", "model")
NONE_KEY = "(none)"
MAX_PLANS = 16
MAX_SCENARIOS = 16


class EconomicsError(PayoffError):
    """An economics request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Loaded:
    period: Period
    as_of_us: int
    buckets: list[Bucket]
    facts: dict[tuple[str, str | None], TaskFact]
    outcomes: list[tuple[str, str, str, Decimal]]


def _period(label: str) -> Period:
    try:
        return Period.month(label)
    except ValueError as exc:
        raise EconomicsError(f"--period: {exc}") from None


def load(store: Store, label: str, as_of_us: int | None = None) -> Loaded:
    """The period's buckets, task facts and verified outcomes, as of a time (default now)."""
    period = _period(label)
    as_of = store.stable_time(now_us) if as_of_us is None else as_of_us
    buckets = store.usage_buckets(period.start_us, period.end_us, as_of)  # type: ignore[attr-defined]
    facts = {}
    for row in store.task_rows(period.start_us, period.end_us):  # type: ignore[attr-defined]
        ended = (
            row.status in FINAL_STATUSES
            and row.status_at_us is not None
            and period.start_us <= row.status_at_us < period.end_us
        )
        facts[(row.customer, row.task)] = TaskFact(row.type, row.status, ended)
    outcomes = [
        (
            v.outcome.customer,
            v.outcome.task,
            v.outcome.type,
            v.outcome.value if v.outcome.value is not None else Decimal(0),
        )
        for v in verified_in(store, period, as_of, None)
    ]
    return Loaded(period, as_of, buckets, facts, outcomes)


def pricer(catalog: Catalog, buckets: Sequence[Bucket]) -> Pricer:
    """Price tables for every (provider, model, day) the buckets name, batch and not."""
    tables: dict[PriceKey, Any] = {}
    models = set()
    for b in buckets:
        if b.source != CATALOG or b.provider is None or b.model is None:
            continue
        models.add((b.provider, b.model))
        for batch in (False, True):
            key = (b.provider, b.model, batch, b.day)
            if key not in tables:
                tables[key] = catalog.price_table(b.provider, b.model, batch, b.day * US_PER_DAY)
    gpu = {(o.provider.lower(), o.model.lower()) for o in catalog.overrides if o.gpu_hour_usd}
    gpu_priced = frozenset(m for m in models if (m[0].lower(), m[1].lower()) in gpu)
    return Pricer(tables, gpu_priced)


# -- the report ---------------------------------------------------------------------------


def _invoice_lines(store: Store, document: dict[str, Any]) -> list[Line]:
    charges: dict[str, Charge] = {}
    for window in document.get("windows") or [{"plan": document["plan"]}]:
        for charge in plan_of(find_plan(store, window["plan"])).charges:
            charges[charge.name] = charge
    lines = []
    for fee in document["fees"]:
        amount = Decimal(fee["amount"])
        if "late_period" in fee:
            lines.append(Line("late", amount))
        else:
            lines.append(Line("charge", amount, charges[fee["charge"]]))
    lines.append(Line("true_up", Decimal(document["minimum_true_up"])))
    lines.append(Line("discount", -Decimal(document["maximum_discount"])))
    return lines


def _main_models(buckets: Sequence[Bucket]) -> dict[tuple[str, str | None], str]:
    """Each task's model: the one that cost it most (ties: more tokens, then the name)."""
    spent: dict[tuple[str, str | None], dict[str, tuple[int, int]]] = defaultdict(dict)
    for b in buckets:
        if b.model is None:
            continue
        name = f"{b.provider}/{b.model}"
        cost, tokens = spent[(b.customer, b.task)].get(name, (0, 0))
        spent[(b.customer, b.task)][name] = (cost + b.cost_nanousd, tokens + b.tokens)
    return {
        key: max(models.items(), key=lambda item: (item[1], item[0]))[0]
        for key, models in spent.items()
    }


def report(
    store: Store, label: str, by: str = "customer", as_of_us: int | None = None
) -> dict[str, Any]:
    """Revenue (from the period's invoices, drafts included), cost, outcomes, tokens and
    risks per row and in total. Read only."""
    if by not in GROUPINGS:
        raise EconomicsError(f"--by: one of {', '.join(GROUPINGS)}, got {by!r}")
    data = load(store, label, as_of_us)
    customers = ledgers(data.buckets, data.facts, data.outcomes)
    shares: dict[str, Attribution] = {}
    plans: dict[str, str] = {}
    invoices = [i for i in store.list_invoices(period=label, limit=None) if i.status != "void"]
    for invoice in invoices:  # in creation order: the latest of a customer's wins
        if invoice.currency != "USD":
            raise EconomicsError(
                f"invoice {invoice.id}: currency {invoice.currency}; the report sets revenue "
                "against provider cost in USD"
            )
        ledger = customers.setdefault(invoice.customer, CustomerLedger())
        lines = _invoice_lines(store, invoice.document)
        shares[invoice.customer] = attribute(lines, ledger.units, invoice.currency)
        plans[invoice.customer] = invoice.document["plan"]
    models = _main_models(data.buckets)

    def key_of(customer: str, unit: TaskUnits) -> str:
        if by == "customer":
            return customer
        if by == "plan":
            return plans.get(customer, NONE_KEY)
        if by == "task_type":
            return unit.type or NONE_KEY
        return models.get((customer, unit.task), NONE_KEY)

    rows, total = grouped(customers, shares, key_of)
    return {
        "period": label,
        "by": by,
        "invoices": len(invoices),
        "rows": [
            {"key": key, **rows[key].derived()} for key in sorted(rows) if rows[key] != Figures()
        ],
        "total": total.derived(),
    }


# -- the simulation -----------------------------------------------------------------------


def _usage_summary(buckets: Sequence[Bucket]) -> dict[str, int]:
    """What each technique reduces: tokens, full-price input, reasoning, hidden steps,
    target-model passes (one per output token without speculative decoding)."""
    tokens = uncached = reasoning = hidden_steps = passes = cost = 0
    for b in buckets:
        output = b.text_output + b.reasoning
        tokens += b.uncached + b.cache_read + b.cache_write + output
        uncached += b.uncached
        reasoning += b.reasoning
        hidden_steps += 0 if b.visible else b.calls
        if b.provider is not None:  # one pass per token unless speculative decoding cut it
            passes += output if b.passes_factor == 1 else round(output * b.passes_factor)
        cost += b.cost_nanousd
    return {
        "tokens": tokens,
        "uncached_input": uncached,
        "reasoning": reasoning,
        "hidden_steps": hidden_steps,
        "target_passes": passes,
        "cost": cost,
    }


def load_plans(paths: Sequence[str | Path]) -> list[Plan]:
    if not paths or len(paths) > MAX_PLANS:
        raise EconomicsError(f"--plan: between 1 and {MAX_PLANS} plan files")
    plans = [load_plan(path)[0] for path in paths]
    for plan, path in zip(plans, paths, strict=True):
        if plan.currency != "USD":
            raise EconomicsError(f"{path}: currency {plan.currency}; provider cost is in USD")
    labels = [f"{p.id}@{p.version}" for p in plans]
    if len(set(labels)) != len(labels):
        raise EconomicsError(f"--plan: the same plan given twice ({', '.join(labels)})")
    return plans


def parse_scenarios(texts: Sequence[str]) -> list[Scenario]:
    if len(texts) > MAX_SCENARIOS:
        raise EconomicsError(f"--scenario: at most {MAX_SCENARIOS}")
    try:
        scenarios = [parse_scenario(text) for text in texts]
    except ScenarioError as exc:
        raise EconomicsError(f"--scenario: {exc}") from None
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise EconomicsError("--scenario: names must differ")
    return [Scenario(BASELINE), *scenarios]


def _change(now: Decimal | int, before: Decimal | int) -> str | None:
    share = ratio(Decimal(now) - Decimal(before), before)
    return None if share is None else format(share, "f")


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """The garbage collector paused, then restored as it was.

    A simulation makes millions of short-lived objects without reference cycles (buckets,
    per-task sums), freed by reference counting; the cycle collector found nothing in them
    and took a fifth of the time at a million events, rescanning the ledger on every pass.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def simulate(
    store: Store,
    label: str,
    plans: Sequence[Plan],
    scenarios: Sequence[Scenario],
    catalog: Catalog,
    as_of_us: int | None = None,
) -> dict[str, Any]:
    """Every customer on each plan, under each scenario, side by side. Read only."""
    with _without_cycle_collection():
        return _simulate(store, label, plans, scenarios, catalog, as_of_us)


def _simulate(
    store: Store,
    label: str,
    plans: Sequence[Plan],
    scenarios: Sequence[Scenario],
    catalog: Catalog,
    as_of_us: int | None,
) -> dict[str, Any]:
    data = load(store, label, as_of_us)
    prices = pricer(catalog, data.buckets)
    baseline: dict[str, Figures] = {}
    base_usage: dict[str, int] = {}
    tasks = period_tasks(data.buckets, data.facts, data.outcomes)  # the same in every scenario
    results = []
    for scenario in scenarios:
        buckets = scenario.apply(data.buckets, prices)
        customers = ledgers(buckets, data.facts, data.outcomes, tasks)
        usage = _usage_summary(buckets)
        base_usage = base_usage or usage
        by_plan = {}
        simulated = simulate_plans(
            plans, customers, label, data.period.days, scenario.list_output_factor()
        )
        for plan, figures in zip(plans, simulated, strict=True):
            name = f"{plan.id}@{plan.version}"
            before = baseline.setdefault(name, figures)
            by_plan[name] = {
                **figures.derived(),
                "revenue_change": _change(figures.revenue, before.revenue),
                "cost_change": _change(figures.cost_nanousd, before.cost_nanousd),
                "margin_change": _change(figures.margin, before.margin),
            }
        results.append(
            {
                "scenario": scenario.name,
                "params": {k: format(v, "f") for k, v in sorted(scenario.params.items())},
                "usage": usage,
                "usage_change": {k: _change(usage[k], base_usage[k]) for k in usage},
                "plans": by_plan,
            }
        )
    return {
        "period": label,
        "plans": [f"{p.id}@{p.version}" for p in plans],
        "scenarios": results,
    }
