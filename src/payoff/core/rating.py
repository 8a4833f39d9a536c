"""Rating: usage totals of one customer and window, priced by a plan, into fees.

records -> aggregate (in SQL, by the store) -> units (here) -> price (charge model) -> fee
(rounded once, here). Pure: the same totals and plan give the same fees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from payoff.core import pricing
from payoff.core.currency import round_money
from payoff.core.money import NANOUSD_PER_USD
from payoff.core.plan import ANY, Charge, Plan

ZERO = Decimal(0)


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


@dataclass(frozen=True)
class Fee:
    """One priced line. `precise_amount` is kept beside `amount`, rounded once."""

    charge: str
    units: Decimal
    precise_amount: Decimal
    amount: Decimal
    period: str
    late: bool = False


def _matches(wanted: str | None, actual: str | None) -> bool:
    return wanted in (ANY, actual)


def units(charge: Charge, totals: UsageTotals) -> Decimal | tuple[Decimal, ...]:
    """What a charge counts: a quantity, or for percentage charges the outcome values."""
    if charge.type == "subscription":
        return Decimal(totals.active_days) / Decimal(totals.period_days)
    if charge.type == "tokens":
        counted = sum(totals.tokens.get(name, 0) for name in charge.classes)
        return Decimal(counted - totals.absorbed.get(charge.name, 0))
    if charge.type == "task":
        wanted_statuses = ("completed",) if charge.count == "completed" else None
        return Decimal(
            sum(
                count
                for task_type, status, count in totals.tasks
                if _matches(charge.task_type, task_type)
                and (wanted_statuses is None or status in wanted_statuses)
            )
        )
    assert charge.type == "outcome"
    values = tuple(value for kind, value in totals.outcomes if _matches(charge.outcome, kind))
    assert charge.price is not None
    return values if charge.price.model == "percentage" else Decimal(len(values))


def precise_amount(
    charge: Charge, counted: Decimal | tuple[Decimal, ...], totals: UsageTotals
) -> Decimal:
    if charge.type == "subscription":
        assert charge.amount is not None and isinstance(counted, Decimal)
        return charge.amount * counted
    if charge.markup is not None:
        cost_usd = Decimal(totals.cost_nanousd) / NANOUSD_PER_USD
        return cost_usd * (1 + charge.markup)
    assert charge.price is not None
    if isinstance(counted, tuple):
        return pricing.price_values(charge.price, counted)
    return pricing.price(charge.price, counted)


def rate(plan: Plan, totals: UsageTotals, period: str) -> list[Fee]:
    """The fees of one window under one plan, each rounded once."""
    fees = []
    for charge in plan.charges:
        counted = units(charge, totals)
        precise = precise_amount(charge, counted, totals)
        assert precise >= 0, f"charge {charge.name}: negative amount {precise}"
        shown_units = Decimal(len(counted)) if isinstance(counted, tuple) else counted
        fees.append(
            Fee(
                charge=charge.name,
                units=shown_units,
                precise_amount=precise,
                amount=round_money(precise, plan.currency, plan.rounding),
                period=period,
            )
        )
    return fees
