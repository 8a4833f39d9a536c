"""Budget advice: the outcome rate by hidden tokens per task, and the reasoning budget
that maximises the margin per task under a price per verified outcome.

Pure: the shell streams the tasks of a type and period from the ledger as `Trial`s (hidden
tokens, cost, what their verified outcomes earn) and this module answers with figures,
named as docs/economics.md (*Budget advice*) and docs/conventions.md say: money as exact
decimal strings of USD, rates as decimal fractions to 4 places.

    trials ──ordered──▶ bands (quantiles of hidden tokens: rate, Wilson interval, cost)
                  └───▶ budgets.curve ──best──▶ recommended budget
                                                  └─ estimate: a bootstrap over tasks, its
                                                     margin's interval and its gain's over
                                                     no cap
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from payoff.core.budgets import (
    SCALE,
    Budget,
    Trial,
    best,
    curve,
    margins,
    ordered,
    per_item_nanousd,
)
from payoff.core.figures import ratio
from payoff.core.intervals import CONFIDENCE, bootstrap_totals, wilson
from payoff.core.money import format_nanousd

BANDS_MAX = 5
"""Quintiles of hidden tokens per task, when there are enough tasks."""
TASKS_PER_BAND_MIN = 10
"""Fewer tasks than this in a band make its rate mostly noise: fewer bands instead."""
SEED = 20261
"""The bootstrap's seed: fixed, so that the same ledger gives the same interval."""
RESAMPLES = 1000
RESAMPLES_MIN = 200
DRAWS_MAX = 10_000_000
"""Bootstrap draws at most (resamples x tasks): past 10,000 tasks, fewer resamples, down to
RESAMPLES_MIN, so that a run stays within seconds."""
CURVE_POINTS_MAX = 200
"""Budgets listed in `curve` (and drawn): every band's top, the recommended budget, and
budgets evenly spaced among the rest."""


def resamples_for(tasks: int) -> int:
    return max(RESAMPLES_MIN, min(RESAMPLES, DRAWS_MAX // max(1, tasks)))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def _usd(amount_nanousd: int | None) -> str | None:
    return None if amount_nanousd is None else format_nanousd(amount_nanousd)


def rate_json(successes: int, trials: int) -> dict[str, str | None]:
    """A rate with its Wilson 95 % interval (all null without trials)."""
    interval = wilson(successes, trials)
    return {
        "outcome_rate": _text(ratio(successes, trials)),
        "outcome_rate_low": None if interval is None else _text(interval[0]),
        "outcome_rate_high": None if interval is None else _text(interval[1]),
    }


@dataclass(frozen=True)
class Band:
    """Tasks whose hidden tokens fall in [low, high]."""

    tokens_hidden_min: int
    tokens_hidden_max: int
    trials: tuple[Trial, ...]

    def as_json(self, capped_here: Budget) -> dict[str, Any]:
        tasks = len(self.trials)
        verified = sum(1 for t in self.trials if t.outcomes_verified)
        outcomes = sum(t.outcomes_verified for t in self.trials)
        cost = sum(t.cost_nanousd for t in self.trials)
        return {
            "tokens_hidden_min": self.tokens_hidden_min,
            "tokens_hidden_max": self.tokens_hidden_max,
            "tasks": tasks,
            "tasks_verified": verified,
            **rate_json(verified, tasks),
            "outcomes_verified": outcomes,
            "cost_per_task_usd": _usd(per_item_nanousd(cost * SCALE, tasks)),
            "cost_per_verified_outcome_usd": _usd(per_item_nanousd(cost * SCALE, outcomes)),
            "budget_margin_per_task_usd": _usd(
                per_item_nanousd(capped_here.margin_scaled, capped_here.tasks)
            ),
        }


def bands(trials: Sequence[Trial]) -> list[Band]:
    """Bands of about equal numbers of tasks by hidden tokens (quantiles), at most
    BANDS_MAX and at least TASKS_PER_BAND_MIN tasks each where possible; tasks with the same
    hidden tokens always share a band, so a band may hold more than its share."""
    count = min(BANDS_MAX, max(1, len(trials) // TASKS_PER_BAND_MIN))
    tops = sorted({trials[len(trials) * k // count - 1].tokens_hidden for k in range(1, count)})
    tops.append(trials[-1].tokens_hidden)
    found: list[Band] = []
    start = 0
    for top in dict.fromkeys(tops):  # in order, each once
        end = start
        while end < len(trials) and trials[end].tokens_hidden <= top:
            end += 1
        if end > start:
            members = tuple(trials[start:end])
            found.append(Band(members[0].tokens_hidden, top, members))
        start = end
    return found


def budget_json(budget: Budget) -> dict[str, Any]:
    """The figures of the tasks under one budget; rates are of the tasks that fit."""
    return {
        "tokens_hidden_max": budget.tokens_hidden_max,
        "tasks_cut": budget.tasks_cut,
        "tasks_cut_share": _text(ratio(budget.tasks_cut, budget.tasks)),
        "tasks_verified": budget.tasks_verified,
        **rate_json(budget.tasks_verified, budget.tasks_fit),
        "outcomes_verified": budget.outcomes_verified,
        "revenue_per_task_usd": _usd(
            per_item_nanousd(budget.revenue_nanousd * SCALE, budget.tasks)
        ),
        "cost_per_task_usd": _usd(per_item_nanousd(budget.cost_scaled, budget.tasks)),
        "cost_per_verified_outcome_usd": _usd(
            per_item_nanousd(budget.cost_scaled, budget.outcomes_verified)
        ),
        "margin_per_task_usd": _usd(per_item_nanousd(budget.margin_scaled, budget.tasks)),
    }


def _curve_points(budgets: Sequence[Budget], keep: set[int]) -> list[Budget]:
    """At most CURVE_POINTS_MAX budgets: those in `keep`, and others evenly spaced."""
    room = max(0, CURVE_POINTS_MAX - len(keep))
    step = max(1, -(-len(budgets) // max(1, room)))
    chosen = {b.tokens_hidden_max for b in budgets[::step]} | keep
    return [b for b in budgets if b.tokens_hidden_max in chosen]


@dataclass(frozen=True)
class Advice:
    trials: tuple[Trial, ...]
    bands: tuple[Band, ...]
    budgets: tuple[Budget, ...]
    recommended: Budget | None
    """None when no task earned anything: there is no revenue to set a budget against."""
    estimate: Estimate | None
    resamples: int

    @property
    def uncapped(self) -> Budget:
        return self.budgets[-1]

    def as_json(self) -> dict[str, Any]:
        trials = self.trials
        verified = sum(1 for t in trials if t.outcomes_verified)
        by_top = {b.tokens_hidden_max: b for b in self.budgets}
        return {
            "tasks": len(trials),
            "tasks_verified": verified,
            **rate_json(verified, len(trials)),
            "outcomes_verified": sum(t.outcomes_verified for t in trials),
            "tokens_hidden": sum(t.tokens_hidden for t in trials),
            "cost_usd": format_nanousd(sum(t.cost_nanousd for t in trials)),
            "revenue_usd": format_nanousd(sum(t.revenue_nanousd for t in trials)),
            "bands": [band.as_json(by_top[band.tokens_hidden_max]) for band in self.bands],
            "uncapped": budget_json(self.uncapped),
            "recommended": self._recommended_json(),
            "curve": [
                {
                    "tokens_hidden_max": b.tokens_hidden_max,
                    "tasks_cut": b.tasks_cut,
                    "margin_per_task_usd": _usd(per_item_nanousd(b.margin_scaled, b.tasks)),
                }
                for b in _curve_points(self.budgets, self._marked())
            ],
            "bootstrap": {
                "resamples": self.resamples,
                "seed": SEED,
                "confidence": format(CONFIDENCE, "f"),
            },
            "notes": self.notes(),
        }

    def notes(self) -> list[str]:
        """What a reader must know to read the figures, in sentences."""
        found = []
        tasks = len(self.trials)
        if len(self.bands) == 1:
            why = (
                f"fewer than {2 * TASKS_PER_BAND_MIN} tasks"
                if tasks < 2 * TASKS_PER_BAND_MIN
                else "every task spent the same hidden tokens"
            )
            found.append(
                f"All {tasks:,} tasks are in one band ({why}): the outcome rate is not "
                "compared across hidden tokens."
            )
        chosen = self.recommended
        if chosen is None:
            found.append(
                "No budget is recommended: no task earned anything (no verified outcome at a "
                "price above zero), so there is no revenue to weigh cost against."
            )
        elif chosen.margin_scaled <= 0:
            found.append(
                f"At this price no budget has a positive margin: the smallest loss is at "
                f"{chosen.tokens_hidden_max:,} hidden tokens per task."
            )
        elif chosen is self.uncapped:
            found.append(
                "No cap: a budget below the largest task's hidden tokens "
                f"({chosen.tokens_hidden_max:,}) only lowers the margin."
            )
        return found

    def _marked(self) -> set[int]:
        marked = {band.tokens_hidden_max for band in self.bands}
        marked |= {self.budgets[0].tokens_hidden_max, self.uncapped.tokens_hidden_max}
        if self.recommended is not None:
            marked.add(self.recommended.tokens_hidden_max)
        return marked

    def _recommended_json(self) -> dict[str, Any] | None:
        chosen, estimate = self.recommended, self.estimate
        if chosen is None or estimate is None:
            return None
        tasks = len(self.trials)
        return {
            **budget_json(chosen),
            "uncapped": chosen is self.uncapped,
            "margin_per_task_low_usd": _usd(per_item_nanousd(estimate.margin_low, tasks)),
            "margin_per_task_high_usd": _usd(per_item_nanousd(estimate.margin_high, tasks)),
            "gain_per_task_usd": _usd(per_item_nanousd(estimate.gain, tasks)),
            "gain_per_task_low_usd": _usd(per_item_nanousd(estimate.gain_low, tasks)),
            "gain_per_task_high_usd": _usd(per_item_nanousd(estimate.gain_high, tasks)),
        }


@dataclass(frozen=True)
class Estimate:
    """The recommended budget's margin and its gain over no cap, with their 95 % bootstrap
    intervals: totals over the tasks, SCALE times the nano-USD."""

    margin_low: int
    margin_high: int
    gain: int
    gain_low: int
    gain_high: int


def estimate(trials: Sequence[Trial], chosen: Budget, uncapped: Budget, resamples: int) -> Estimate:
    """Resample the tasks: each resample's margin under the budget, and its gain over no cap
    (the same draws for both, so that the gain's interval is of the difference)."""
    own = margins(trials, chosen.tokens_hidden_max)
    free = margins(trials, uncapped.tokens_hidden_max)
    gain = [a - b for a, b in zip(own, free, strict=True)]
    assert sum(own) == chosen.margin_scaled and sum(free) == uncapped.margin_scaled
    (low, high), (gain_low, gain_high) = bootstrap_totals([own, gain], SEED, resamples)
    return Estimate(low, high, sum(gain), gain_low, gain_high)


def advise(trials: Sequence[Trial], resamples: int | None = None) -> Advice:
    """Bands, every candidate budget and the best one, for at least one task."""
    assert trials, "advice needs at least one task"
    found = ordered(trials)
    budgets = curve(found)
    resamples = resamples_for(len(found)) if resamples is None else resamples
    chosen = best(budgets) if any(t.revenue_nanousd for t in found) else None
    return Advice(
        trials=tuple(found),
        bands=tuple(bands(found)),
        budgets=tuple(budgets),
        recommended=chosen,
        estimate=None if chosen is None else estimate(found, chosen, budgets[-1], resamples),
        resamples=resamples,
    )
