"""Budgets of a task and of a customer, and what is left of them.

The boundary is exact and the same everywhere in payoff (a plan's reasoning budget counts
the tokens above it too): a budget is *exceeded* only when what was spent is strictly above
its limit. Spending exactly the limit is within budget, and `remaining()` is then 0.
Amounts are integers: tokens, or nano-USD parsed exactly from decimal strings, never float.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from payoff.core.money import format_nanousd, parse_usd_exact_nanousd

HIDDEN_TOKENS = "hidden_tokens"
COST = "cost"
CUSTOMER_COST = "customer_cost"


def usd_nanousd(amount: str | Decimal, what: str) -> int:
    """A USD amount given as a decimal string (or Decimal) in nano-USD, refusing float."""
    if not isinstance(amount, str | Decimal):
        raise TypeError(
            f'{what} is USD as a decimal string such as "0.004" (got {type(amount).__name__}: '
            "a float cannot say an amount of money exactly)"
        )
    try:
        return parse_usd_exact_nanousd(str(amount))
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from None


def exceeded(limit: int | None, spent: int) -> bool:
    """True when a limit is set and `spent` is strictly above it."""
    return limit is not None and spent > limit


@dataclass(frozen=True)
class Budget:
    """The budget of one task: hidden tokens and/or cost (USD decimal string).

    `enforce=True`: once exceeded, the task's next `record` or `tool` raises BudgetExceeded
    (after recording its step). `enforce=False`: the task is only flagged (`Task.flags`).
    """

    hidden_tokens: int | None = None
    cost: str | Decimal | None = None
    enforce: bool = False
    cost_nanousd: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.hidden_tokens is not None and (
            type(self.hidden_tokens) is not int or self.hidden_tokens < 0
        ):
            raise ValueError(
                f"hidden_tokens must be a non-negative int, got {self.hidden_tokens!r}"
            )
        if self.cost is not None:
            object.__setattr__(self, "cost_nanousd", usd_nanousd(self.cost, "Budget cost"))


@dataclass(frozen=True)
class CustomerBudget:
    """A customer's cost limit per calendar month (UTC, the periods invoices use)."""

    customer: str
    cost_per_period_nanousd: int
    enforce: bool


def month_of(moment: dt.datetime) -> str:
    """The period label (YYYY-MM, UTC) a moment falls in."""
    utc = moment.astimezone(dt.UTC)
    return f"{utc.year:04d}-{utc.month:02d}"


@dataclass(frozen=True)
class Remaining:
    """What is left of each budget that is set (None where none is): limit less spent.

    A negative figure says by how much a budget was overspent. `exceeded` names the budgets
    strictly over their limit.
    """

    hidden_tokens: int | None
    cost_nanousd: int | None
    customer_cost_nanousd: int | None
    exceeded: tuple[str, ...]

    @property
    def cost(self) -> str | None:
        """The task's remaining cost budget as USD with nine places; negative when over."""
        return _usd(self.cost_nanousd)

    @property
    def customer_cost(self) -> str | None:
        return _usd(self.customer_cost_nanousd)


def _usd(amount_nanousd: int | None) -> str | None:
    if amount_nanousd is None:
        return None
    sign = "-" if amount_nanousd < 0 else ""
    return sign + format_nanousd(abs(amount_nanousd))
