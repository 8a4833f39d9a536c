"""The margin of a per-task reasoning budget, at every budget that can be best.

A budget caps the hidden tokens a task may spend. Over a set of observed tasks, the model
is (docs/economics.md, *Budget advice*):

- a task whose hidden tokens are within the budget runs as it did: it earns what its
  verified outcomes earned and costs what it cost;
- a task above the budget is cut off when it reaches it: it earns nothing (no outcome is
  verified) and costs its cost pro rata of the hidden tokens it spent by then, cost x
  budget / hidden tokens.

The margin is then a sum of exact integers, kept at `SCALE` times the nano-USD: a cut task's
cost per hidden token is its cost x SCALE / hidden tokens, rounded half-even once per task,
so that a budget's cut cost is budget x (the sum of those rates). Between two consecutive
observed hidden-token counts the tasks that fit stay the same and the cut cost grows with
the budget, so the margin falls: the best budget is always 0 or an observed count, and
`curve` evaluates exactly those, every one, in one pass over the tasks sorted by hidden
tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from payoff.core.money import round_div_half_even

SCALE = 10**12
"""Places kept below the nano-USD on a cut task's cost per hidden token (10**-21 USD)."""


class Trial(NamedTuple):
    """One observed task, as the budget model sees it."""

    tokens_hidden: int
    cost_nanousd: int
    revenue_nanousd: int
    """What its verified outcomes earn at the price."""
    outcomes_verified: int


def ordered(trials: Sequence[Trial]) -> list[Trial]:
    """The trials in the one order every figure is computed in: by hidden tokens, then by
    the rest, so that the same tasks in any order give the same figures and resamples."""
    found = sorted(trials)
    for t in found:
        assert t.tokens_hidden >= 0 and t.cost_nanousd >= 0 and t.revenue_nanousd >= 0, t
    return found


def cost_rate(trial: Trial) -> int:
    """The trial's cost per hidden token, SCALE times the nano-USD, half-even (0 with no
    hidden tokens: such a task fits every budget and is never cut)."""
    if trial.tokens_hidden == 0:
        return 0
    return round_div_half_even(trial.cost_nanousd * SCALE, trial.tokens_hidden)


@dataclass(frozen=True)
class Budget:
    """The observed tasks under one budget: those that fit, and what the cut ones cost."""

    tokens_hidden_max: int
    tasks: int
    tasks_fit: int
    tasks_verified: int
    """Tasks that fit and had at least one verified outcome."""
    outcomes_verified: int
    revenue_nanousd: int
    cost_fit_nanousd: int
    cost_cut_scaled: int
    """What the cut tasks cost, SCALE times the nano-USD."""

    @property
    def tasks_cut(self) -> int:
        return self.tasks - self.tasks_fit

    @property
    def cost_scaled(self) -> int:
        return self.cost_fit_nanousd * SCALE + self.cost_cut_scaled

    @property
    def margin_scaled(self) -> int:
        return self.revenue_nanousd * SCALE - self.cost_scaled


def per_item_nanousd(amount_scaled: int, count: int) -> int | None:
    """A SCALE-times amount per item, to the nano-USD, half-even; None without items."""
    return None if count == 0 else round_div_half_even(amount_scaled, count * SCALE)


def curve(trials: Sequence[Trial]) -> list[Budget]:
    """Every budget that can be best, from the smallest: 0 (unless some task spent no
    hidden tokens, when 0 is its count) and each distinct hidden-token count observed.
    The last is the largest count: no task is cut."""
    assert trials and list(trials) == ordered(trials), "trials in `ordered` order"
    rates = [cost_rate(t) for t in trials]
    cut_rates = [0] * (len(trials) + 1)  # cut_rates[i]: the sum of rates from i on
    for index in range(len(trials) - 1, -1, -1):
        cut_rates[index] = cut_rates[index + 1] + rates[index]
    budgets = []
    if trials[0].tokens_hidden > 0:
        budgets.append(Budget(0, len(trials), 0, 0, 0, 0, 0, 0))
    verified = outcomes = revenue = cost = 0
    for index, t in enumerate(trials):
        verified += t.outcomes_verified > 0
        outcomes += t.outcomes_verified
        revenue += t.revenue_nanousd
        cost += t.cost_nanousd
        last = index + 1 == len(trials) or trials[index + 1].tokens_hidden != t.tokens_hidden
        if last:  # the budget at this count: every task up to here fits
            cut = t.tokens_hidden * cut_rates[index + 1]
            budgets.append(
                Budget(t.tokens_hidden, len(trials), index + 1, verified, outcomes, revenue,
                       cost, cut)
            )  # fmt: skip
    return budgets


def best(budgets: Sequence[Budget]) -> Budget:
    """The budget of the highest margin; of equal margins, the largest (it cuts fewest)."""
    found = budgets[0]
    for budget in budgets[1:]:
        if budget.margin_scaled >= found.margin_scaled:
            found = budget
    return found


def margins(trials: Sequence[Trial], tokens_hidden_max: int) -> list[int]:
    """Each trial's margin under a budget, SCALE times the nano-USD: their sum is the
    budget's `margin_scaled` (what the bootstrap resamples)."""
    return [
        (t.revenue_nanousd - t.cost_nanousd) * SCALE
        if t.tokens_hidden <= tokens_hidden_max
        else -tokens_hidden_max * cost_rate(t)
        for t in trials
    ]
