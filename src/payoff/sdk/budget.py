"""Budgets of a task and of a customer, what was spent against them, and what is left.

A Meter keeps one BudgetBook: the spend of each customer per month (the ledger's part,
loaded once, plus what this Meter recorded since) and the crossing and refusal rules. A Task
keeps its own spend in a TaskSpend and asks the book before and after each step. Nothing
here reads the clock, a ledger or the network itself, so the rules are tested alone.

The boundary is exact and the same everywhere in payoff (a plan's reasoning budget counts
the tokens above it too): a budget is *exceeded* only when what was spent is strictly above
its limit. Spending exactly the limit is within budget, and `remaining()` is then 0.
Amounts are integers: tokens, or nano-USD parsed exactly from decimal strings, never float.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from payoff.core.errors import BudgetExceeded
from payoff.core.money import format_nanousd, parse_usd_exact_nanousd
from payoff.core.periods import Period

logger = logging.getLogger("payoff.sdk")

HIDDEN_TOKENS = "hidden_tokens"
COST = "cost"
CUSTOMER_COST = "customer_cost"


def parse_usd_argument(amount: str | Decimal, what: str) -> int:
    """A USD argument given as a decimal string (or Decimal) in nano-USD, parsed exactly.

    It refuses float (TypeError) and anything finer than a nano-USD (ValueError), naming
    the argument `what`; unlike core.money.round_usd_to_nanousd, it never rounds.
    """
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
            object.__setattr__(self, "cost_nanousd", parse_usd_argument(self.cost, "Budget cost"))


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


@dataclass(frozen=True)
class Step:
    """What one step adds to its task's spend."""

    tokens_total: int
    tokens_visible: int
    cost_nanousd: int | None  # None: the catalog cannot price it, the cost is unknown


@dataclass
class TaskSpend:
    """One task's budget and what the task spent so far; a BudgetBook updates it."""

    task: str
    customer: str
    budget: Budget
    steps: int = 0
    unpriced_steps: int = 0
    tokens_total: int = 0
    tokens_visible: int = 0
    cost_nanousd: int = 0
    flags: list[str] = field(default_factory=list)
    """Budgets this task went over, in the order it did (flagged, enforced or not)."""

    @property
    def tokens_hidden(self) -> int:
        return self.tokens_total - self.tokens_visible


Over = dict[str, tuple[int, int, bool]]
"""Budgets strictly over their limit: name -> (limit, spent, enforced)."""


@dataclass(frozen=True)
class Crossing:
    """A step's effect on the budgets, known before its record is emitted."""

    period: str
    over_before: Over
    crossed: tuple[str, ...]
    """Budgets within their limit before the step and over it after: its record says so."""


PeriodSpend = Callable[[str, Period], int]
"""What the ledger already holds for a customer in a period, in nano-USD (priced steps)."""


class BudgetBook:
    """Spend against budgets, for every task and customer of one Meter.

    For each step a Task asks `crossing` (which budgets the step takes over their limit),
    emits the step's record, then calls `add`, which counts the step and returns the
    refusal to raise, if any: an enforced budget that was already exceeded *before* the
    step refuses it after it is recorded, so a recorded call is never lost.
    """

    def __init__(self, period_spend: PeriodSpend) -> None:
        self._period_spend = period_spend
        self._lock = threading.Lock()
        self._customer_budgets: dict[str, CustomerBudget] = {}
        self._customer_spend: dict[tuple[str, str], int] = {}

    def after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # a parent's thread may have held it at fork()

    # -- customers ------------------------------------------------------------------------

    def set_customer_budget(self, customer: str, limit_nanousd: int, enforce: bool) -> None:
        with self._lock:
            self._customer_budgets[customer] = CustomerBudget(customer, limit_nanousd, enforce)

    def customer_budget_of(self, customer: str) -> CustomerBudget | None:
        return self._customer_budgets.get(customer)

    def customer_spend_nanousd(self, customer: str, period: str) -> int:
        """The customer's spend in the period: the ledger's (loaded once) plus this book's."""
        if customer not in self._customer_budgets:
            return 0  # nothing to check: spare the ledger the query
        key = (customer, period)
        with self._lock:
            if key not in self._customer_spend:
                self._customer_spend[key] = self._period_spend(customer, Period.month(period))
            return self._customer_spend[key]

    def _add_customer_spend(self, customer: str, period: str, cost_nanousd: int) -> None:
        if customer not in self._customer_budgets or not cost_nanousd:
            return
        self.customer_spend_nanousd(customer, period)  # loads the ledger's part first
        with self._lock:
            self._customer_spend[(customer, period)] += cost_nanousd

    # -- steps ----------------------------------------------------------------------------

    def crossing(self, spend: TaskSpend, step: Step, period: str) -> Crossing:
        """Which budgets `step` would take over their limit; nothing is counted yet."""
        customer_before = self.customer_spend_nanousd(spend.customer, period)
        before = self._over(spend, customer_before)
        cost = step.cost_nanousd or 0
        after = self._over(
            spend,
            customer_before + cost,
            tokens_hidden=spend.tokens_hidden + step.tokens_total - step.tokens_visible,
            cost_nanousd=spend.cost_nanousd + cost,
        )
        crossed = tuple(name for name in after if name not in before)
        return Crossing(period, before, crossed)

    def add(self, spend: TaskSpend, step: Step, crossing: Crossing) -> BudgetExceeded | None:
        """Count a step whose record was emitted; the refusal to raise after it, if any."""
        cost = step.cost_nanousd or 0
        self._add_customer_spend(spend.customer, crossing.period, cost)
        spend.steps += 1
        spend.tokens_total += step.tokens_total
        spend.tokens_visible += step.tokens_visible
        spend.cost_nanousd += cost
        spend.unpriced_steps += step.cost_nanousd is None
        for name in crossing.crossed:
            if name not in spend.flags:
                spend.flags.append(name)
                logger.warning("payoff: task %s went over its %s budget", spend.task, name)
        return self._refusal(spend, crossing.over_before, crossing.period)

    def refusal(self, spend: TaskSpend, period: str) -> BudgetExceeded | None:
        """The error for an enforced budget already exceeded now, if any (Task.check)."""
        customer_spend = self.customer_spend_nanousd(spend.customer, period)
        return self._refusal(spend, self._over(spend, customer_spend), period)

    def remaining(self, spend: TaskSpend, period: str) -> Remaining:
        """What is left of each budget set on the task and on its customer in `period`."""
        customer_spend = self.customer_spend_nanousd(spend.customer, period)
        customer = self.customer_budget_of(spend.customer)
        budget = spend.budget
        return Remaining(
            hidden_tokens=None
            if budget.hidden_tokens is None
            else budget.hidden_tokens - spend.tokens_hidden,
            cost_nanousd=None
            if budget.cost_nanousd is None
            else budget.cost_nanousd - spend.cost_nanousd,
            customer_cost_nanousd=None
            if customer is None
            else customer.cost_per_period_nanousd - customer_spend,
            exceeded=tuple(self._over(spend, customer_spend)),
        )

    def _over(
        self,
        spend: TaskSpend,
        customer_spend_nanousd: int,
        *,
        tokens_hidden: int | None = None,
        cost_nanousd: int | None = None,
    ) -> Over:
        tokens_hidden = spend.tokens_hidden if tokens_hidden is None else tokens_hidden
        cost_nanousd = spend.cost_nanousd if cost_nanousd is None else cost_nanousd
        over: Over = {}
        budget = spend.budget
        if budget.hidden_tokens is not None and exceeded(budget.hidden_tokens, tokens_hidden):
            over[HIDDEN_TOKENS] = (budget.hidden_tokens, tokens_hidden, budget.enforce)
        if budget.cost_nanousd is not None and exceeded(budget.cost_nanousd, cost_nanousd):
            over[COST] = (budget.cost_nanousd, cost_nanousd, budget.enforce)
        customer = self.customer_budget_of(spend.customer)
        if customer is not None and exceeded(
            customer.cost_per_period_nanousd, customer_spend_nanousd
        ):
            over[CUSTOMER_COST] = (
                customer.cost_per_period_nanousd,
                customer_spend_nanousd,
                customer.enforce,
            )
        return over

    def _refusal(self, spend: TaskSpend, over: Over, period: str) -> BudgetExceeded | None:
        """The error for the first enforced budget in `over`, with what is spent by now."""
        for name, (limit, _, enforced) in over.items():
            if enforced:
                return BudgetExceeded(spend.task, name, limit, self._spent(spend, name, period))
        return None

    def _spent(self, spend: TaskSpend, name: str, period: str) -> int:
        if name == HIDDEN_TOKENS:
            return spend.tokens_hidden
        if name == COST:
            return spend.cost_nanousd
        return self.customer_spend_nanousd(spend.customer, period)
