"""The economics figures of a set of tasks: sums kept exact, ratios derived once.

Every figure is defined in docs/economics.md. Sums are integers (tokens, nano-USD) and
Decimals (revenue, in the invoice currency); ratios are Decimals rounded half-even to
`RATIO_PLACES` places, computed from exact fractions, and None when their denominator is 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

from payoff.core.money import NANOUSD_PER_USD, ZERO, format_nanousd, round_div_half_even

RATIO_PLACES = 4


def ratio(numerator: int | Decimal, denominator: int | Decimal) -> Decimal | None:
    """numerator / denominator to RATIO_PLACES places, half-even; None when it is undefined."""
    if denominator == 0:
        return None
    exact = Fraction(numerator) / Fraction(denominator) * 10**RATIO_PLACES
    sign = -1 if exact < 0 else 1
    scaled = round_div_half_even(abs(exact.numerator), exact.denominator)
    return Decimal(sign * scaled).scaleb(-RATIO_PLACES)


def average_nanousd(amount_nanousd: int, count: int) -> int | None:
    """The amount per item, rounded half-even; None when there are no items."""
    return None if count == 0 else round_div_half_even(amount_nanousd, count)


@dataclass
class Figures:
    """Exact sums over tasks; `derived()` turns them into the reported figures."""

    revenue: Decimal = ZERO
    revenue_late: Decimal = ZERO  # late lines: earlier periods' corrections, in revenue
    cost_nanousd: int = 0
    cost_visible_nanousd: int = 0
    cost_unearned_nanousd: int = 0  # cost of work that earned no revenue
    spend_verified: Decimal = ZERO  # customer spend on tasks with a verified outcome
    tasks: int = 0
    tasks_verified: int = 0  # tasks with at least one outcome verified in the period
    outcomes_verified: int = 0
    tokens_visible: int = 0
    tokens_hidden: int = 0
    unpriced_events: int = 0

    def add(self, other: Figures) -> None:
        # Field by field, written out: this runs once per task and plan (a test checks that
        # every field is summed).
        self.revenue += other.revenue
        self.revenue_late += other.revenue_late
        self.cost_nanousd += other.cost_nanousd
        self.cost_visible_nanousd += other.cost_visible_nanousd
        self.cost_unearned_nanousd += other.cost_unearned_nanousd
        self.spend_verified += other.spend_verified
        self.tasks += other.tasks
        self.tasks_verified += other.tasks_verified
        self.outcomes_verified += other.outcomes_verified
        self.tokens_visible += other.tokens_visible
        self.tokens_hidden += other.tokens_hidden
        self.unpriced_events += other.unpriced_events

    @property
    def cost_usd(self) -> Decimal:
        return Decimal(self.cost_nanousd) / NANOUSD_PER_USD  # exact: nine places at most

    @property
    def margin(self) -> Decimal:
        return self.revenue - self.cost_usd

    def derived(self) -> dict[str, Any]:
        """Every reported figure, named as in docs/conventions.md: money as exact decimal
        strings of USD (`_usd` last; the report and the simulation refuse other currencies),
        counts as integers, ratios and shares as decimal strings (0.25 is a quarter)."""

        def text(value: Decimal | None) -> str | None:
            return None if value is None else format(value, "f")

        def usd(value: int | None) -> str | None:
            return None if value is None else format_nanousd(value)

        # Customer spend of the period: the late lines belong to earlier periods' work.
        spend = self.revenue - self.revenue_late
        return {
            "revenue_usd": text(self.revenue),
            "late_revenue_usd": text(self.revenue_late),
            "cost_usd": format_nanousd(self.cost_nanousd),
            "margin_usd": text(self.margin),
            "margin_share": text(ratio(self.margin, self.revenue)),
            "tasks": self.tasks,
            "outcomes_verified": self.outcomes_verified,
            "success_rate": text(ratio(self.tasks_verified, self.tasks)),
            "cost_per_task_usd": usd(average_nanousd(self.cost_nanousd, self.tasks)),
            "cost_per_verified_outcome_usd": usd(
                average_nanousd(self.cost_nanousd, self.outcomes_verified)
            ),
            "tokens_visible": self.tokens_visible,
            "tokens_hidden": self.tokens_hidden,
            "hidden_ratio": text(ratio(self.tokens_hidden, self.tokens_visible)),
            "hidden_cost_share": text(
                ratio(self.cost_nanousd - self.cost_visible_nanousd, self.cost_nanousd)
            ),
            "unpriced_steps": self.unpriced_events,
            "provider_risk": text(ratio(self.cost_unearned_nanousd, self.cost_nanousd)),
            "customer_risk": text(ratio(spend - self.spend_verified, spend)),
            "value_alignment": text(ratio(self.spend_verified, spend)),
        }
