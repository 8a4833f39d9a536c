"""Rating: usage totals of one customer and window, priced by a plan, into fees.

records -> aggregate (in SQL, by the store) -> counted (here) -> price (charge model) -> fee
(rounded once, here). Pure: the same totals and plan give the same fees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_HALF_EVEN, Decimal

from payoff.core import pricing
from payoff.core.allowances import Walked, WindowUse, walk
from payoff.core.currency import round_money
from payoff.core.money import NANOUSD_PER_USD, ZERO
from payoff.core.plan import ANY, Charge, Plan
from payoff.core.seats import Segment, seat_days, segments
from payoff.core.statuses import charged_status
from payoff.core.token_classes import TOKEN_CLASSES

KeyedTokens = tuple[str | None, str | None, str | None, tuple[int, ...], int, int, bool]
"""(task type, provider, model, tokens by class in TOKEN_CLASSES order, cost in nano-USD,
unpriced steps, batch) of a window's usage of one key: what filtered charges count."""


@dataclass(frozen=True)
class UsageTotals:
    """What rating reads of a customer's window (a subscription within a period)."""

    active_days: int
    period_days: int
    tokens: Mapping[str, int] = field(default_factory=dict)
    """Tokens by class: input (uncached), cache_read, cache_write, output."""
    absorbed: Mapping[str, int] = field(default_factory=dict)
    """Per charge with a reasoning budget: hidden tokens over the budget, summed over tasks."""
    cost_nanousd: int = 0
    unpriced_steps: int = 0
    tasks: tuple[tuple[str | None, str, int], ...] = ()
    """(task type, status, number of tasks) of the tasks that ended in the window."""
    outcomes: tuple[tuple[str, Decimal], ...] = ()
    """(outcome type, value; 0 when none) of the outcomes counted, in time order."""
    keyed: tuple[KeyedTokens, ...] = ()
    """Usage by key, in key order; read only for plans with filtered charges (else empty)."""
    gpu_seconds: Mapping[str, Decimal] = field(default_factory=dict)
    """Per compute charge: the GPU-seconds of the usage it counts (`core.compute`)."""
    seats: tuple[int, ...] = ()
    """The customer's seat count on each day of the window (read when a charge is per seat)."""
    hours: tuple[tuple[int, tuple[int, ...]], ...] = ()
    """(hour from the period's start, tokens of each of TOKEN_CLASSES) of each hour of the
    window with usage, in order (read when a charge has usage limits)."""


NEWER_INPUTS = ("keyed", "gpu_seconds", "seats", "hours")
"""Fields of the totals left out of the digest when empty: read only for plans with filters,
compute charges, seats or usage limits, added after invoices had digests."""


def inputs_digest(inputs: Sequence[UsageTotals]) -> str:
    """What an invoice records of what it was rated from: sha256 of its windows' usage
    totals as JSON (keys sorted, no spaces, UTF-8, decimals as strings), in the order rated:
    the period's own windows, then those of each earlier period rated again for late lines.
    """
    values = [_as_dict(totals) for totals in inputs]
    text = json.dumps(
        values, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _as_dict(totals: UsageTotals) -> dict[str, object]:
    """`dataclasses.asdict` of the totals, without its deep copy of every outcome's tuple
    (a month holds one per outcome): the fields hold only numbers, strings, Decimals, tuples
    and mappings, which JSON writes the same either way."""
    values = {f.name: _plain(getattr(totals, f.name)) for f in dataclasses.fields(UsageTotals)}
    for name in NEWER_INPUTS:  # a window without them keeps the digest it had before them
        if not values[name]:
            del values[name]
    return values


def _plain(value: object) -> object:
    return dict(value) if isinstance(value, Mapping) else value


@dataclass(frozen=True)
class Fee:
    """One priced line of an invoice. `precise_amount` is kept beside `amount`, rounded once.

    `quantity` is what the charge counted: tokens, tasks, outcomes, the share of the period
    for a subscription, or the provider cost in USD for a cost-plus charge (its JSON key is
    "units"). `period` is the period the line bills: the invoice's own, or an earlier one for
    a late line.
    """

    charge: str
    quantity: Decimal
    precise_amount: Decimal
    amount: Decimal
    period: str
    late: bool = False
    absorbed_tokens: int | None = None
    """For a charge with a reasoning budget: hidden tokens over it, absorbed by the provider."""
    unpriced_steps: int | None = None
    """For a cost-plus charge: steps of unknown cost, missing from the fee."""
    seats: tuple[Segment, ...] | None = None
    """For a per-seat charge: the (seats, days) it billed, in day order; quantity is their
    seat-days."""
    windows: tuple[WindowUse, ...] | None = None
    """For a charge with usage limits: each limit's windows that saw use; quantity is the
    overage."""


def _matches(wanted: str | None, actual: str | None) -> bool:
    return wanted in (ANY, actual)


def billed_seats(charge: Charge, totals: UsageTotals) -> tuple[Segment, ...]:
    """A per-seat charge's (seats, days) over the window: each day once, at its seat
    count or the charge's minimum, whichever is more."""
    return segments(totals.seats, charge.minimum_seats or 0)


def walked(charge: Charge, totals: UsageTotals) -> Walked:
    """A limited charge's hours walked through its allowances: overage and window use."""
    wanted = [TOKEN_CLASSES.index(name) for name in charge.classes]
    hourly = [(hour, sum(tokens[i] for i in wanted)) for hour, tokens in totals.hours]
    return walk(charge.limits, hourly)


def counted(charge: Charge, totals: UsageTotals) -> Decimal | tuple[Decimal, ...]:
    """What a charge counts: a quantity, or for percentage charges the outcome values."""
    if charge.per_seat:
        return Decimal(seat_days(billed_seats(charge, totals)))
    if charge.type == "subscription":
        # The share of the period, shown to six places; the amount is computed from the days.
        share = Decimal(totals.active_days) / Decimal(totals.period_days)
        return share.quantize(Decimal("0.000001"), rounding=ROUND_HALF_EVEN).normalize()
    if charge.type == "tokens" and charge.compute is not None:
        return totals.gpu_seconds.get(charge.name, Decimal(0))
    if charge.type == "tokens" and charge.filters is not None:
        at = [TOKEN_CLASSES.index(name) for name in charge.classes]
        return Decimal(sum(row[3][i] for row in _matched(charge, totals) for i in at))
    if charge.limits:
        return Decimal(walked(charge, totals).overage)
    if charge.type == "tokens":
        tokens = sum(totals.tokens.get(name, 0) for name in charge.classes)
        return Decimal(tokens - totals.absorbed.get(charge.name, 0))
    if charge.type == "task":
        # Tasks count in the period they end in: an open task is counted once, when it ends.
        return Decimal(
            sum(
                count
                for task_type, status, count in totals.tasks
                if _matches(charge.task_type, task_type) and charged_status(charge.count, status)
            )
        )
    assert charge.type == "outcome"
    values = tuple(value for kind, value in totals.outcomes if _matches(charge.outcome, kind))
    assert charge.price is not None
    return values if charge.price.model == "percentage" else Decimal(len(values))


def precise_amount(
    charge: Charge, measured: Decimal | tuple[Decimal, ...], cost_usd: Decimal
) -> Decimal:
    """A charge's precise amount for what it counted (cost_usd: for cost-plus charges)."""
    if charge.type == "subscription":
        assert charge.amount is not None and isinstance(measured, Decimal)
        return charge.amount * measured
    if charge.markup is not None:
        return cost_usd * (1 + charge.markup)
    assert charge.price is not None
    if isinstance(measured, tuple):
        return pricing.price_values(charge.price, measured)
    return pricing.price(charge.price, measured)


def make_fee(
    plan: Plan,
    charge: Charge,
    measured: Decimal | tuple[Decimal, ...],
    cost_usd: Decimal,
    period: str,
) -> Fee:
    precise = precise_amount(charge, measured, cost_usd)
    assert precise >= 0, f"charge {charge.name}: negative amount {precise}"
    if charge.markup is not None:
        quantity = cost_usd  # a cost-plus charge counts provider cost, in USD
    elif isinstance(measured, tuple):
        quantity = Decimal(len(measured))
    else:
        quantity = measured
    return Fee(
        charge=charge.name,
        quantity=quantity,
        precise_amount=precise,
        amount=round_money(precise, plan.currency, plan.rounding),
        period=period,
    )


def _matched(charge: Charge, totals: UsageTotals) -> list[KeyedTokens]:
    return matched_keys(charge, totals.keyed)


def keyed_in_order(
    sums: Mapping[tuple[str | None, str | None, str | None, bool], Sequence[int]],
) -> tuple[KeyedTokens, ...]:
    """Sums by (task type, provider, model, batch), each tokens by class, cost and
    unpriced steps, as KeyedTokens in key order (None before any name)."""
    return tuple(
        (key[0], key[1], key[2], tuple(sums[key][:4]), sums[key][4], sums[key][5], key[3])
        for key in sorted(sums, key=lambda k: (k[0] or "", k[1] or "", k[2] or "", k[3]))
    )


def matched_keys(charge: Charge, keyed: Sequence[KeyedTokens]) -> list[KeyedTokens]:
    """The keys a tokens charge counts: those its filters match (every key without)."""
    found = charge.filters
    return [row for row in keyed if found is None or found.matches(row[1], row[2], row[0], row[6])]


def _cost_counted(charge: Charge, totals: UsageTotals) -> tuple[Decimal, int]:
    """The provider cost in USD a charge counts, and its steps of unknown cost."""
    if charge.filters is None:
        return Decimal(totals.cost_nanousd) / NANOUSD_PER_USD, totals.unpriced_steps
    rows = _matched(charge, totals)
    return Decimal(sum(row[4] for row in rows)) / NANOUSD_PER_USD, sum(row[5] for row in rows)


def fees_for(plan: Plan, totals: UsageTotals, period: str) -> list[Fee]:
    """The fees of one window under one plan, each rounded once."""
    fees = []
    for charge in plan.charges:
        cost_usd, unpriced = _cost_counted(charge, totals)
        fee = make_fee(plan, charge, counted(charge, totals), cost_usd, period)
        if charge.type == "subscription":
            # Prorated by days, multiplied before dividing: rounded once, when the fee is made.
            assert charge.amount is not None
            days = seat_days(billed_seats(charge, totals)) if charge.per_seat else None
            precise = charge.amount * (totals.active_days if days is None else days)
            precise = precise / totals.period_days
            if charge.per_seat:
                fee = replace(fee, seats=billed_seats(charge, totals))
            fee = replace(
                fee,
                precise_amount=precise,
                amount=round_money(precise, plan.currency, plan.rounding),
            )
        if charge.limits:
            fee = replace(fee, windows=walked(charge, totals).windows)
        if charge.hidden_tokens_per_task_max is not None:
            fee = replace(fee, absorbed_tokens=totals.absorbed.get(charge.name, 0))
        if charge.markup is not None and unpriced:
            fee = replace(fee, unpriced_steps=unpriced)
        fees.append(fee)
    return fees


def has_filters(plan: Plan) -> bool:
    """Whether rating the plan reads usage by key: filtered or compute charges."""
    return any(c.filters is not None or c.compute is not None for c in plan.charges)


@dataclass(frozen=True)
class Unbilled:
    """Tokens of one key that no tokens charge counting their class matches."""

    task_type: str | None
    provider: str | None
    model: str | None
    tokens: Mapping[str, int]


def unbilled(plan: Plan, totals: UsageTotals) -> list[Unbilled]:
    """Usage a filtered plan bills to no charge: tokens of a class some tokens charge
    counts, on a key no charge counting that class matches. A class no tokens charge counts
    (or a plan with none) is not billed on purpose, and is not unbilled usage."""
    if not has_filters(plan):
        return []
    charges = [c for c in plan.charges if c.type == "tokens"]
    found = []
    for task_type, provider, model, tokens, _, _, batch in totals.keyed:
        missed = {
            name: tokens[at]
            for at, name in enumerate(TOKEN_CLASSES)
            if tokens[at]
            and any(name in c.classes for c in charges)
            and not any(
                name in c.classes
                and (c.filters is None or c.filters.matches(provider, model, task_type, batch))
                for c in charges
            )
        }
        if missed:
            found.append(Unbilled(task_type, provider, model, missed))
    return found


def quote(
    plan: Plan,
    quantities: Mapping[str, Decimal],
    values: Mapping[str, Sequence[Decimal]],
    period: str = "quote",
) -> list[Fee]:
    """Fees for given quantities, without a ledger: a price calculator.

    A subscription's quantity is the share of the period (default 1), a per-seat one's the
    seats held all period (default 1, never below its minimum); a cost-plus charge's
    quantity is the provider cost in USD; a percentage charge prices `values`.
    """
    fees = []
    for charge in plan.charges:
        default = Decimal(1) if charge.type == "subscription" else Decimal(0)
        quantity = quantities.get(charge.name, default)
        if charge.per_seat:
            quantity = max(quantity, Decimal(charge.minimum_seats or 0))
        measured: Decimal | tuple[Decimal, ...] = quantity
        if charge.price is not None and charge.price.model == "percentage":
            measured = tuple(values.get(charge.name, ()))
        fees.append(make_fee(plan, charge, measured, quantity, period))
    return fees


TRUE_UP_LINE = "minimum_true_up"
DISCOUNT_LINE = "maximum_discount"


def late_fees(plan: Plan, now: Sequence[Fee], billed: Sequence[Fee], period: str) -> list[Fee]:
    """Lines for a finalized period whose fees moved since it was billed (late usage,
    reversed outcomes): what the period's fees come to now, less what was billed for it.

    `now` are the period's fees rated now, its minimum true-up and maximum discount as lines
    named TRUE_UP_LINE and DISCOUNT_LINE (the discount negative); `billed` every line
    already billed for the period on finalized invoices, in the same shape. Lines are
    compared by charge name, summed over the period's windows; each line's amount is the
    rounded amount now less the rounded amounts billed, so no rounding drifts. A line may
    be negative: a credit.
    """
    names = list(dict.fromkeys(fee.charge for fee in [*now, *billed]))
    lines = []
    for name in names:
        current = [fee for fee in now if fee.charge == name]
        before = [fee for fee in billed if fee.charge == name]
        amount = sum((f.amount for f in current), ZERO) - sum((f.amount for f in before), ZERO)
        if amount == 0:
            continue
        lines.append(
            Fee(
                charge=name,
                quantity=sum((f.quantity for f in current), ZERO)
                - sum((f.quantity for f in before), ZERO),
                precise_amount=sum((f.precise_amount for f in current), ZERO)
                - sum((f.precise_amount for f in before), ZERO),
                amount=round_money(amount, plan.currency, plan.rounding),
                period=period,
                late=True,
            )
        )
    return lines
