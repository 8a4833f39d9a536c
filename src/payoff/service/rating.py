"""Rating use cases: a period's aggregates loaded from the store and priced by each
customer's plans, window by window; late lines for earlier finalized periods whose fees
moved; and quotes (a plan priced without a ledger).

Aggregates are computed by the store in SQL (by customer and day of the period); a
subscription window is a sum of its days. Rating is a pure function of (aggregates, plan
versions, period, as-of time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from payoff.core.allowances import HOURS_PER_DAY
from payoff.core.compute import GpuRate, rounded_seconds
from payoff.core.contracts import MAX_RULE_DAYS
from payoff.core.errors import PayoffError
from payoff.core.invoicing import Rerated, Window, adjustment_lines, make_invoice
from payoff.core.outcomes import Policy
from payoff.core.periods import US_PER_DAY, Period, from_us
from payoff.core.plan import MAX_NUMBER, Charge, Plan
from payoff.core.rating import (
    Fee,
    KeyedTokens,
    Unbilled,
    UsageTotals,
    fees_for,
    has_filters,
    keyed_in_order,
    late_fees,
    matched_keys,
    quote,
    unbilled,
)
from payoff.core.seats import SeatCount, daily_seats
from payoff.core.token_classes import TOKEN_CLASSES
from payoff.service.outcomes import verified_in
from payoff.service.plans import BillingError, find_plan, plan_of
from payoff.store.billing import DayOutcome, HourUsage, StoredInvoice, StoredPlan, Subscription
from payoff.store.protocol import RatingStore, VerifyingStore

LATE_LOOKBACK_PERIODS = 24
"""How many earlier finalized periods an invoice run checks for late usage."""


def billing_period(label: str) -> Period:
    """The month a label names (YYYY-MM), refused as a BillingError."""
    try:
        return Period.month(label)
    except ValueError as exc:
        raise BillingError(str(exc)) from None


def months_before(period: Period, months: int) -> str:
    for _ in range(months):
        period = period.previous()
    return period.label


# -- quotes ------------------------------------------------------------------------------


def quote_document(
    plan: Plan, quantities: dict[str, Decimal], values: dict[str, list[Decimal]]
) -> dict[str, Any]:
    """A plan priced for given quantities and outcome values, without a ledger: its fees
    and totals as an invoice would show them."""
    names = {charge.name for charge in plan.charges}
    unknown = sorted((set(quantities) | set(values)) - names)
    if unknown:
        raise BillingError(f"no charge named {', '.join(unknown)} in plan {plan.id}")
    too_large = sorted(name for name, q in quantities.items() if q >= MAX_NUMBER)
    too_large += sorted(name for name, vs in values.items() if any(v >= MAX_NUMBER for v in vs))
    if too_large:
        raise BillingError(f"quantities and values stay below {MAX_NUMBER:,}: {too_large}")
    for charge in plan.charges:
        by_value = charge.price is not None and charge.price.model == "percentage"
        if by_value and charge.name in quantities:
            raise BillingError(f"charge {charge.name!r} prices values: use --values, not --units")
        if not by_value and charge.name in values:
            raise BillingError(f"charge {charge.name!r} prices units: use --units, not --values")
    fees = quote(plan, quantities, values)
    full = make_invoice(
        invoice_id="quote",
        customer="",
        period="quote",
        status="draft",  # never stored, and the quote shows no status
        plan=plan,
        fees=fees,
        as_of="",
        plan_digest="",
        inputs_digest="",
    )
    keep = ("fees", "subtotal", "minimum_true_up", "maximum_discount", "total")
    document = full.to_document()
    return {key: document[key] for key in keep}


# -- rating a period ---------------------------------------------------------------


@dataclass
class _PeriodUsage:
    """The period's aggregates of every customer, by day, from the store."""

    usage: dict[str, list[Any]]
    tasks: dict[str, list[Any]]
    outcomes: dict[str, list[Any]]
    budgets: dict[tuple[tuple[str, ...], int], dict[str, list[Any]]]
    keyed: dict[str, list[Any]]
    """By task type, provider and model: read only when a plan has filtered charges."""
    gpu: GpuRates
    seats: dict[str, list[SeatCount]]
    """Seat counts recorded by the run's as-of time (read only when a plan is per seat)."""
    hours: dict[str, list[HourUsage]]
    """Usage by hour of the customers on a plan with usage limits (only theirs: it is read
    from their events, so its cost grows with them)."""


GpuRates = Mapping[tuple[str, str], GpuRate]
"""What each self-hosted model's GPUs serve (provider, model), from the price overrides."""


def _by_customer(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.customer].append(row)
    return grouped


def _load_period(
    store: RatingStore,
    period: Period,
    as_of_us: int,
    customer: str | None,
    plans: Iterable[Plan],
    gpu: GpuRates,
    limited: Iterable[str] = (),
) -> _PeriodUsage:
    args = (period.start_us, period.end_us, as_of_us)
    budgets = {
        (c.classes, c.hidden_tokens_per_task_max)
        for plan in plans
        for c in plan.charges
        if c.type == "tokens" and c.hidden_tokens_per_task_max is not None
    }
    filtered = any(has_filters(plan) for plan in plans)
    return _PeriodUsage(
        gpu=gpu,
        keyed=_by_customer(store.usage_by_key(*args, customer=customer)) if filtered else {},
        usage=_by_customer(store.usage_by_day(*args, customer=customer)),
        tasks=_by_customer(store.tasks_by_day(*args, customer=customer)),
        outcomes=_by_customer(_verified_by_day(store, period, as_of_us, customer)),
        budgets={
            (classes, cap): _by_customer(
                store.hidden_over_budget(*args, classes, cap, customer=customer)
            )
            for classes, cap in budgets
        },
        seats=_seat_counts(store, as_of_us, customer, plans),
        hours=_by_customer(store.usage_by_hour(*args, sorted(set(limited)))) if limited else {},
    )


def _seat_counts(
    store: RatingStore, as_of_us: int, customer: str | None, plans: Iterable[Plan]
) -> dict[str, list[SeatCount]]:
    if not any(charge.per_seat for plan in plans for charge in plan.charges):
        return {}
    counts: dict[str, list[SeatCount]] = defaultdict(list)
    for row in store.seat_counts(customer, as_of_us):
        counts[row.customer].append(SeatCount(row.effective_at_us, row.seats))
    return counts


def _verified_by_day(
    store: RatingStore, period: Period, as_of_us: int, customer: str | None
) -> list[DayOutcome]:
    """Outcomes verified in the period, by the day they were verified: what is billed."""
    return [
        DayOutcome(
            found.outcome.customer,
            (found.verified_at_us - period.start_us) // US_PER_DAY,
            found.outcome.type,
            found.outcome.value if found.outcome.value is not None else Decimal(0),
        )
        for found in verified_in(store, period, as_of_us, customer)
    ]


def _window_days(period: Period, sub: Subscription) -> tuple[int, int]:
    first = max(0, (sub.starts_at_us - period.start_us) // US_PER_DAY)
    last = (
        period.days
        if sub.ends_at_us is None
        else min(period.days, -(-(sub.ends_at_us - period.start_us) // US_PER_DAY))
    )
    return first, last


def _totals(
    data: _PeriodUsage, plan: Plan, customer: str, days: tuple[int, int], period: Period
) -> UsageTotals:
    first, last = days

    def inside(row: Any) -> bool:
        return bool(first <= row.day < last)

    usage = [row for row in data.usage.get(customer, ()) if inside(row)]
    keyed = _keyed([row for row in data.keyed.get(customer, ()) if inside(row)])
    tasks: dict[tuple[str | None, str], int] = defaultdict(int)
    for row in data.tasks.get(customer, ()):
        if inside(row):
            tasks[(row.type, row.status)] += row.tasks
    absorbed = {
        c.name: sum(
            row.absorbed
            for row in data.budgets[(c.classes, c.hidden_tokens_per_task_max)].get(customer, ())
            if inside(row)
        )
        for c in plan.charges
        if c.type == "tokens" and c.hidden_tokens_per_task_max is not None
    }
    return UsageTotals(
        active_days=last - first,
        period_days=period.days,
        tokens={
            name: sum(getattr(row, name) for row in usage)
            for name in ("input", "cache_read", "cache_write", "output")
        },
        absorbed=absorbed,
        cost_nanousd=sum(row.cost_nanousd for row in usage),
        unpriced_steps=sum(row.unpriced_steps for row in usage),
        tasks=tuple(sorted(((t, s, n) for (t, s), n in tasks.items()), key=str)),
        outcomes=tuple(
            (row.type, row.value) for row in data.outcomes.get(customer, ()) if inside(row)
        ),
        keyed=keyed if has_filters(plan) else (),
        gpu_seconds={
            c.name: _gpu_seconds(c, keyed, data.gpu) for c in plan.charges if c.compute is not None
        },
        seats=tuple(daily_seats(data.seats.get(customer, ()), period.start_us, first, last))
        if any(charge.per_seat for charge in plan.charges)
        else (),
        hours=tuple(
            (row.hour, row.tokens)
            for row in data.hours.get(customer, ())
            if first * HOURS_PER_DAY <= row.hour < last * HOURS_PER_DAY
        )
        if any(charge.limits for charge in plan.charges)
        else (),
    )


def _gpu_seconds(charge: Charge, keyed: tuple[KeyedTokens, ...], gpu: GpuRates) -> Decimal:
    """GPU-seconds of the usage a compute charge counts; a model it counts tokens of must
    be priced by GPU time in the price overrides."""
    total = Fraction(0)
    for _, provider, model, counts, _, _, _ in matched_keys(charge, keyed):
        tokens = dict(zip(TOKEN_CLASSES, counts, strict=True))
        if not any(tokens[name] for name in charge.classes):
            continue
        rate = gpu.get((provider or "", model or ""))
        if rate is None:
            raise BillingError(
                f"charge {charge.name!r} counts GPU-seconds, and {provider}/{model} has no "
                "gpu_hour_usd price override: give the overrides (--prices) or filter it out"
            )
        total += rate.seconds(tokens, charge.classes)
    return rounded_seconds(total)


def gpu_rates(overrides: Iterable[Any], period: Period) -> dict[tuple[str, str], GpuRate]:
    """Each GPU-priced model's override in effect when the period starts (the latest
    started; one without a date when none has started)."""
    start = from_us(period.start_us).date()
    found: dict[tuple[str, str], tuple[Any, Any]] = {}
    for override in overrides:
        if override.gpu_hour_usd is None:
            continue
        if override.from_date is not None and override.from_date > start:
            continue
        key = (override.provider, override.model)
        if key not in found or (override.from_date or start.min) >= (found[key][0] or start.min):
            found[key] = (override.from_date, override)
    return {
        key: GpuRate(o.gpus, o.input_tokens_per_second, o.output_tokens_per_second)
        for key, (_, o) in found.items()
    }


def _keyed(rows: list[Any]) -> tuple[KeyedTokens, ...]:
    """A window's usage by key, its days summed, in key order."""
    sums: dict[tuple[str | None, str | None, str | None, bool], list[int]] = {}
    for row in rows:
        values = [row.input, row.cache_read, row.cache_write, row.output]
        values += [row.cost_nanousd, row.unpriced_steps]
        key = (row.task_type, row.provider, row.model, bool(row.batch))
        sums[key] = [a + b for a, b in zip(sums.get(key, [0] * 6), values, strict=True)]
    return keyed_in_order(sums)


@dataclass(frozen=True)
class Rated:
    """A customer's own fees for a period, window by window, and what they were rated from."""

    fees: list[Fee]
    plan: Plan  # the period's last plan: its currency, minimum and maximum apply
    plan_digest: str
    inputs: list[UsageTotals]
    windows: list[Window]
    unbilled: list[Unbilled]
    """Usage the windows' filtered plans bill to no charge (`core.rating.unbilled`)."""


Unrated = dict[str, str]
"""Customers a run could not rate, each with the reason, in words meant for the operator."""

RATING_ERRORS = (PayoffError, ArithmeticError)
"""What rating one customer may raise on its own data or plans: that customer is left out of
an invoice run and named, and the others are rated (`rate_period`'s `unrated`)."""


def rating_refusal(error: Exception) -> str:
    """Why a customer could not be rated, in words (never a Python exception's repr)."""
    if isinstance(error, PayoffError):
        return str(error)
    return "an amount is out of the range exact arithmetic can rate"


def rate_period(
    store: RatingStore,
    period: Period,
    as_of_us: int,
    customer: str | None,
    unrated: Unrated | None = None,
    overrides: Sequence[Any] = (),
) -> dict[str, Rated]:
    """Every subscribed customer's own fees for the period, as of a time.

    A customer that cannot be rated (plans in two currencies, a plan that cannot be read, an
    amount out of range) is left out and named in `unrated` when it is given; without it,
    its error is raised. `overrides` are the price overrides (`catalog.Override`) whose
    GPU-hour figures compute charges count GPU-seconds by.
    """
    subs = store.subscriptions(period.start_us, period.end_us, customer)
    refused: Unrated = {} if unrated is None else unrated
    stored, plans = _plans_of(store, subs, unrated)
    gpu = gpu_rates(overrides, period)
    limited = [
        sub.customer
        for sub in subs
        if (sub.plan_id, sub.plan_version) in plans
        and any(c.limits for c in plans[(sub.plan_id, sub.plan_version)].charges)
    ]
    data = _load_period(store, period, as_of_us, customer, plans.values(), gpu, limited)
    rated: dict[str, Rated] = {}
    for sub in subs:
        if sub.customer in refused:
            continue
        try:
            rated[sub.customer] = _rate_window(
                data, period, sub, (stored, plans), rated.get(sub.customer)
            )
        except RATING_ERRORS as error:
            if unrated is None:
                raise
            refused[sub.customer] = rating_refusal(error)
            rated.pop(sub.customer, None)  # none of its windows is billed
    return rated


PlanKey = tuple[str, int]


def _plans_of(
    store: RatingStore, subs: list[Subscription], unrated: Unrated | None
) -> tuple[dict[PlanKey, StoredPlan], dict[PlanKey, Plan]]:
    """The plan versions the subscriptions name, read once each; a plan that cannot be read
    leaves its customers unrated (or raises, without `unrated`)."""
    stored: dict[PlanKey, StoredPlan] = {}
    plans: dict[PlanKey, Plan] = {}
    for sub in subs:
        key = (sub.plan_id, sub.plan_version)
        if key in stored or (unrated is not None and sub.customer in unrated):
            continue
        try:
            stored[key] = find_plan(store, f"{sub.plan_id}@{sub.plan_version}")
            plans[key] = plan_of(store, stored[key])
        except RATING_ERRORS as error:
            if unrated is None:
                raise
            stored.pop(key, None)
            for other in subs:
                if (other.plan_id, other.plan_version) == key:
                    unrated.setdefault(other.customer, rating_refusal(error))
    return stored, plans


def _rate_window(
    data: _PeriodUsage,
    period: Period,
    sub: Subscription,
    plans: tuple[dict[PlanKey, StoredPlan], dict[PlanKey, Plan]],
    earlier: Rated | None,
) -> Rated:
    """A customer's rating with one more subscription window (after `earlier` ones)."""
    stored, parsed = plans
    key = (sub.plan_id, sub.plan_version)
    plan, days = parsed[key], _window_days(period, sub)
    totals = _totals(data, plan, sub.customer, days, period)
    if earlier is not None and earlier.plan.currency != plan.currency:
        raise BillingError(f"{sub.customer}: plans in {period.label} differ in currency")
    window = Window(f"{plan.id}@{plan.version}", stored[key].digest, days[0] + 1, days[1])
    return Rated(
        fees=(earlier.fees if earlier else []) + fees_for(plan, totals, period.label),
        plan=plan,
        plan_digest=stored[key].digest,
        inputs=(earlier.inputs if earlier else []) + [totals],
        windows=(earlier.windows if earlier else []) + [window],
        unbilled=(earlier.unbilled if earlier else []) + unbilled(plan, totals),
    )


# -- late lines --------------------------------------------------------------------------


@dataclass(frozen=True)
class Late:
    """Late lines for earlier finalized periods, what they were rated from (each period's
    usage totals), and how each period was rated again (its windows, the invoices whose
    lines for it were subtracted)."""

    lines: list[Fee]
    inputs: list[UsageTotals]
    rerated: list[Rerated]


def late_lines(
    store: RatingStore,
    customer: str,
    period: Period,
    as_of_us: int,
    billed: list[StoredInvoice],
    deemed_days: int,
    overrides: Sequence[Any] = (),
) -> Late:
    """Lines for earlier finalized periods whose fees moved since they were billed.

    `billed` holds the customer's finalized and paid invoices of the look-back window;
    `deemed_days` is the longest acceptance window of any plan.
    """
    late = Late([], [], [])
    earlier_periods = sorted({i.period for i in billed if i.period < period.label}, reverse=True)
    for label in earlier_periods[:LATE_LOOKBACK_PERIODS]:
        earlier = Period.month(label)
        billed_as_of = max(i.as_of_us for i in billed if i.period == label)
        # Records of the period that arrived after it was billed, or verdicts or signals (a
        # reversal) on the customer's outcomes: the period is re-rated.
        moved = (
            store.received_between(
                customer, earlier.start_us, earlier.end_us, billed_as_of, as_of_us
            )
            or store.verdicts_received_between(customer, billed_as_of, as_of_us)
            or store.signals_received_between(customer, billed_as_of, as_of_us)
        )
        moved = moved or store.task_updates_received_between(customer, billed_as_of, as_of_us)
        # Claims that arrived late, or whose acceptance deadline may have passed since.
        claimed_from = billed_as_of - deemed_days * US_PER_DAY if deemed_days else as_of_us + 1
        moved = moved or store.outcomes_moved(
            customer, claimed_from, billed_as_of, as_of_us, earlier.end_us
        )
        if not moved:
            continue
        now = rate_period(store, earlier, as_of_us, customer, overrides=overrides).get(customer)
        if now is None:
            continue
        # The earlier period is re-rated whole, with its own plan's minimum and cap.
        current = now.fees + adjustment_lines(now.plan, now.fees, label)
        against = [stored for stored in billed if stored.invoice.billed_for(label)]
        already = [fee for stored in against for fee in stored.invoice.billed_for(label)]
        late.lines.extend(late_fees(now.plan, current, already, label))
        late.inputs.extend(now.inputs)
        late.rerated.append(
            Rerated(label, tuple(now.windows), tuple(stored.id for stored in against))
        )
    return late


def longest_acceptance_window(store: VerifyingStore) -> int:
    """The longest time in days, of any plan, that a claim may take to be accepted by time
    alone (0 when none is): `accept_after_days`, or a contract's `assume_after`, or a year
    when a contract waits for its task to go quiet."""
    longest = 0
    for stored in store.list_plans():
        for charge in plan_of(store, stored).charges:
            if charge.type == "outcome":
                longest = max(longest, _acceptance_days(charge.policy))
    return longest


def _acceptance_days(policy: Policy) -> int:
    if policy.contract is None:
        return policy.accept_after_days or 0
    rule = policy.contract.rule
    if rule.inactivity_us is not None:
        return MAX_RULE_DAYS
    return -(-(rule.assume_after_us or 0) // US_PER_DAY)  # whole days, rounded up
