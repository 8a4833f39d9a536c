"""Economics use cases: the period report from the provider's own ledger and invoices, and
the simulation of plans under scenarios. Loads aggregates from the store, calls the core;
never writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from payoff.catalog import Catalog
from payoff.core.attribution import Attribution, Line, TaskUnits, attribute
from payoff.core.buckets import COST_FROM_CATALOG, Bucket, BucketCoster, PriceKey
from payoff.core.economics import (
    CustomerPeriod,
    TaskFact,
    customer_periods,
    grouped,
    period_tasks,
    simulate_plans,
)
from payoff.core.errors import Refused
from payoff.core.figures import Figures, ratio
from payoff.core.invoicing import Invoice, Window
from payoff.core.money import format_nanousd
from payoff.core.periods import US_PER_DAY, Period
from payoff.core.plan import Charge, Plan
from payoff.core.rating import Fee, has_filters
from payoff.core.scenarios import BASELINE, Scenario, ScenarioError, parse_scenario
from payoff.core.seats import SeatCount, daily_seats
from payoff.core.statuses import ended_within
from payoff.plan_files import load_plan
from payoff.service.clock import now_us
from payoff.service.gc_pause import gc_paused
from payoff.service.outcomes import verified_in
from payoff.service.plans import find_plan, plan_of
from payoff.store.protocol import RatingStore

GROUPINGS = ("customer", "plan", "task_type", "model")
NONE_KEY = "(none)"
MAX_PLANS = 16
MAX_SCENARIOS = 16


class EconomicsError(Refused):
    """An economics request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Loaded:
    period: Period
    as_of_us: int
    buckets: list[Bucket]
    facts: dict[tuple[str, str | None], TaskFact]
    outcomes: list[tuple[str, str, str, Decimal]]
    ended_days: dict[tuple[str, str | None], int]
    """Day of the period (from 0) each task that ended in it ended on."""
    outcome_days: list[int]
    """Day of the period each outcome was verified on, index-aligned with `outcomes`."""


def _period(label: str) -> Period:
    try:
        return Period.month(label)
    except ValueError as exc:  # the message names no option: a shell adds its own name
        raise EconomicsError(str(exc)) from None


def load(store: RatingStore, label: str, as_of_us: int | None = None) -> Loaded:
    """The period's buckets, task facts and verified outcomes, as of a time (default now)."""
    period = _period(label)
    as_of = store.committed_now_us(now_us) if as_of_us is None else as_of_us
    buckets = store.usage_buckets(period.start_us, period.end_us, as_of)
    facts: dict[tuple[str, str | None], TaskFact] = {}
    ended_days: dict[tuple[str, str | None], int] = {}
    for row in store.task_rows(period.start_us, period.end_us):
        ended = ended_within(row.status, row.status_at_us, period.start_us, period.end_us)
        facts[(row.customer, row.task)] = TaskFact(row.type, row.status, ended)
        if ended and row.status_at_us is not None:
            ended_days[(row.customer, row.task)] = (
                row.status_at_us - period.start_us
            ) // US_PER_DAY
    verified = verified_in(store, period, as_of, None)
    outcomes = [
        (
            v.outcome.customer,
            v.outcome.task,
            v.outcome.type,
            v.outcome.value if v.outcome.value is not None else Decimal(0),
        )
        for v in verified
    ]
    outcome_days = [(v.verified_at_us - period.start_us) // US_PER_DAY for v in verified]
    return Loaded(period, as_of, buckets, facts, outcomes, ended_days, outcome_days)


def bucket_coster(catalog: Catalog, buckets: Sequence[Bucket]) -> BucketCoster:
    """Price tables for every (provider, model, day) the buckets name, batch and not."""
    tables: dict[PriceKey, Any] = {}
    models = set()
    for b in buckets:
        if b.source != COST_FROM_CATALOG or b.provider is None or b.model is None:
            continue
        models.add((b.provider, b.model))
        for batch in (False, True):
            key = (b.provider, b.model, batch, b.day)
            if key not in tables:
                tables[key] = catalog.price_table(b.provider, b.model, batch, b.day * US_PER_DAY)
    gpu = {(o.provider.lower(), o.model.lower()) for o in catalog.overrides if o.gpu_hour_usd}
    gpu_priced = frozenset(m for m in models if (m[0].lower(), m[1].lower()) in gpu)
    return BucketCoster(tables, gpu_priced)


# -- the report ---------------------------------------------------------------------------


class WindowViews:
    """The tasks of a customer as each subscription window of its invoice saw them: usage,
    tasks ended and outcomes verified within the window's days (as `invoice run` rates)."""

    def __init__(self, data: Loaded) -> None:
        self.data = data
        self.start_day = data.period.start_us // US_PER_DAY
        self.buckets: dict[str, list[Bucket]] = defaultdict(list)
        for b in data.buckets:
            self.buckets[b.customer].append(b)
        self.facts: dict[str, dict[tuple[str, str | None], TaskFact]] = defaultdict(dict)
        for key, fact in data.facts.items():
            self.facts[key[0]][key] = fact
        self.outcomes: dict[str, list[tuple[int, tuple[str, str, str, Decimal]]]]
        self.outcomes = defaultdict(list)
        for day, outcome in zip(data.outcome_days, data.outcomes, strict=True):
            self.outcomes[outcome[0]].append((day, outcome))

    def units(
        self, customer: str, period_units: Sequence[TaskUnits], window: Window
    ) -> list[TaskUnits] | None:
        """The window's view of `period_units`, or None when it spans the whole period."""
        days = range(window.first_day - 1, window.last_day)
        if days == range(self.data.period.days):
            return None
        ended_days = self.data.ended_days
        facts = {
            key: replace(fact, ended=fact.ended and ended_days.get(key) in days)
            for key, fact in self.facts[customer].items()
        }
        buckets = [b for b in self.buckets[customer] if b.day - self.start_day in days]
        outcomes = [outcome for day, outcome in self.outcomes[customer] if day in days]
        seen = customer_periods(buckets, facts, outcomes).get(customer, CustomerPeriod()).units
        by_task = {unit.task: unit for unit in seen}
        return [by_task.get(unit.task, TaskUnits(None)) for unit in period_units]


def _invoice_lines(
    store: RatingStore, invoice: Invoice, windows: WindowViews, units: Sequence[TaskUnits]
) -> list[Line]:
    """The invoice's lines; each window's fees with the charges of its own plan (found by
    name), shared by the tasks as that window saw them."""
    lines: list[Line] = []
    own = list(invoice.fees)
    whole = Window(invoice.plan, invoice.plan_digest, 1, Period.month(invoice.period).days)
    for window in invoice.windows or (whole,):
        charges = {c.name: c for c in plan_of(store, find_plan(store, window.plan)).charges}
        fees, own = _window_fees(invoice.id, own, charges), own[len(charges) :]
        seen = windows.units(invoice.customer, units, window)
        lines += [Line("charge", fee.amount, charges[fee.charge], seen) for fee in fees]
    if own:
        raise EconomicsError(f"invoice {invoice.id}: fees beyond the plans of its windows")
    lines += [Line("late", fee.amount) for fee in invoice.late]
    lines.append(Line("true_up", invoice.totals.minimum_true_up))
    lines.append(Line("discount", -invoice.totals.maximum_discount))
    return lines


def _window_fees(invoice_id: str, fees: Sequence[Fee], charges: dict[str, Charge]) -> list[Fee]:
    """A window's fees: the next ones, one for each charge of its plan, each named by it."""
    taken = list(fees[: len(charges)])
    if sorted(fee.charge for fee in taken) != sorted(charges):
        raise EconomicsError(
            f"invoice {invoice_id}: its fees do not follow the plans of its windows"
        )
    return taken


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
    store: RatingStore, label: str, by: str = "customer", as_of_us: int | None = None
) -> dict[str, Any]:
    """Revenue (from the period's invoices, drafts included), cost, outcomes, tokens and
    risks per row and in total. Read only."""
    if by not in GROUPINGS:
        raise EconomicsError(f"rows are by one of {', '.join(GROUPINGS)}, got {by!r}")
    data = load(store, label, as_of_us)
    customers = customer_periods(data.buckets, data.facts, data.outcomes)
    shares: dict[str, Attribution] = {}
    plans: dict[str, str] = {}
    windows = WindowViews(data)
    invoices = [i for i in store.list_invoices(period=label, limit=None) if i.status != "void"]
    for invoice in invoices:  # in creation order: the latest of a customer's wins
        if invoice.currency != "USD":
            raise EconomicsError(
                f"invoice {invoice.id}: currency {invoice.currency}; the report sets revenue "
                "against provider cost in USD"
            )
        customer_period = customers.setdefault(invoice.customer, CustomerPeriod())
        lines = _invoice_lines(store, invoice.invoice, windows, customer_period.units)
        shares[invoice.customer] = attribute(lines, customer_period.units, invoice.currency)
        plans[invoice.customer] = invoice.invoice.plan
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


USAGE_KEYS = {
    "tokens": "tokens",
    "uncached_input": "tokens_uncached_input",
    "reasoning": "tokens_reasoning",
    "hidden_steps": "steps_hidden",
    "target_passes": "target_passes",
    "cost": "cost_usd",
}
"""Each usage sum and its name in JSON: what it counts first, its unit last."""


def usage_json(usage: dict[str, int]) -> dict[str, int | str]:
    """A usage summary as JSON: counts as integers, the cost as exact USD."""
    return {
        key: format_nanousd(usage[name]) if name == "cost" else usage[name]
        for name, key in USAGE_KEYS.items()
    }


def load_plans(paths: Sequence[str | Path]) -> list[Plan]:
    if not paths or len(paths) > MAX_PLANS:
        raise EconomicsError(f"between 1 and {MAX_PLANS} plan files")
    plans = [load_plan(path)[0] for path in paths]
    for plan, path in zip(plans, paths, strict=True):
        if plan.currency != "USD":
            raise EconomicsError(f"{path}: currency {plan.currency}; provider cost is in USD")
        if has_filters(plan):
            # Simulation prices tasks' sums, which do not keep usage by provider and model.
            raise EconomicsError(
                f"{path}: charges with filters or compute are not simulated; "
                "`payoff invoice run` bills them"
            )
        limited = [c.name for c in plan.charges if c.limits]
        if limited:
            # Scenarios re-cost usage by day; allowances reset by the hour.
            raise EconomicsError(
                f"{path}: charge {limited[0]!r} limits usage by window, which simulate does "
                "not rate (it sums usage by day); bill it with `payoff invoice run`"
            )
    labels = [f"{p.id}@{p.version}" for p in plans]
    if len(set(labels)) != len(labels):
        raise EconomicsError(f"the same plan given twice ({', '.join(labels)})")
    return plans


def parse_scenarios(texts: Sequence[str]) -> list[Scenario]:
    if len(texts) > MAX_SCENARIOS:
        raise EconomicsError(f"at most {MAX_SCENARIOS} scenarios")
    try:
        scenarios = [parse_scenario(text) for text in texts]
    except ScenarioError as exc:
        raise EconomicsError(str(exc)) from None
    names = [s.name for s in scenarios]
    if len(set(names)) != len(names):
        raise EconomicsError("scenario names must differ")
    return [Scenario(BASELINE), *scenarios]


def _change(now: Decimal | int, before: Decimal | int) -> str | None:
    """(now - before) / |before|: positive when the figure went up, whatever the sign of the
    baseline (a loss that shrinks is a rise in margin)."""
    share = ratio(Decimal(now) - Decimal(before), abs(Decimal(before)))
    return None if share is None else format(share, "f")


def simulate(
    store: RatingStore,
    label: str,
    plans: Sequence[Plan],
    scenarios: Sequence[Scenario],
    catalog: Catalog,
    as_of_us: int | None = None,
) -> dict[str, Any]:
    """Every customer on each plan, under each scenario, side by side. Read only."""
    with gc_paused():
        return _simulate(store, label, plans, scenarios, catalog, as_of_us)


def _hold_seats(
    store: RatingStore, customers: dict[str, CustomerPeriod], plans: Sequence[Plan], data: Loaded
) -> None:
    """Each customer's seats on each day of the period, as an invoice run reads them, when a
    plan simulated is priced per seat."""
    if not any(charge.per_seat for plan in plans for charge in plan.charges):
        return
    counts: dict[str, list[SeatCount]] = defaultdict(list)
    for row in store.seat_counts(None, data.as_of_us):
        counts[row.customer].append(SeatCount(row.effective_at_us, row.seats))
    start, days = data.period.start_us, data.period.days
    for name, customer_period in customers.items():
        customer_period.seats = tuple(daily_seats(counts.get(name, ()), start, 0, days))


def _simulate(
    store: RatingStore,
    label: str,
    plans: Sequence[Plan],
    scenarios: Sequence[Scenario],
    catalog: Catalog,
    as_of_us: int | None,
) -> dict[str, Any]:
    data = load(store, label, as_of_us)
    prices = bucket_coster(catalog, data.buckets)
    baseline: dict[str, Figures] = {}
    base_usage: dict[str, int] = {}
    tasks = period_tasks(data.buckets, data.facts, data.outcomes)  # the same in every scenario
    results = []
    for scenario in scenarios:
        buckets = scenario.apply(data.buckets, prices)
        customers = customer_periods(buckets, data.facts, data.outcomes, tasks)
        _hold_seats(store, customers, plans, data)
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
                "usage": usage_json(usage),
                "usage_change": {
                    key: _change(usage[name], base_usage[name]) for name, key in USAGE_KEYS.items()
                },
                "plans": by_plan,
            }
        )
    return {
        "period": label,
        "plans": [f"{p.id}@{p.version}" for p in plans],
        "scenarios": results,
    }
