"""Attribution: each line of a customer's invoice shared out to the tasks that earned it.

- a token charge, by the tokens of its classes each task used (less what a reasoning budget
  absorbed); a cost-plus token charge, by each task's provider cost;
- a task charge, one share per task it counted (type and status matching, ended in the
  period);
- an outcome charge, by each task's outcomes verified in the period (a percentage charge,
  by what each outcome's value is priced at);
- a subscription and a minimum true-up, one share per task of the period;
- a maximum discount, in proportion to what each task was attributed before it;
- a late line (an earlier period's correction) and any line with nothing to share it by
  stay unattributed.

A charge line of a subscription window (a plan change mid-period) is shared by the tasks
as that window saw them (`Line.units`): its usage, tasks ended and outcomes verified in
its days.

Shares are split in minor units by the largest-remainder method (`allocation.allocate`), so
the tasks' amounts plus the unattributed amount sum back to the invoice's total exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from payoff.core.allocation import allocate, integer_weights
from payoff.core.currency import minor_unit, to_minor
from payoff.core.money import ZERO
from payoff.core.plan import ANY, Charge
from payoff.core.pricing.percentage import fee_for
from payoff.core.statuses import OPEN, charged_status
from payoff.core.token_classes import hidden_tokens, tokens_over_budget

LINE_KINDS = ("charge", "true_up", "discount", "late")


@dataclass(frozen=True)
class TaskUnits:
    """What one task of a customer's period counts toward each kind of charge."""

    task: str | None  # None: usage recorded outside any task
    type: str | None = None
    status: str = OPEN
    ended: bool = False  # ended (completed, failed, abandoned) within the period
    tokens: Mapping[str, int] = field(default_factory=dict)
    """By plan token class: input (uncached), cache_read, cache_write, output."""
    visible_output: int = 0
    cost_nanousd: int = 0
    outcomes: tuple[tuple[str, Decimal], ...] = ()
    """(type, value; 0 when none) of the task's outcomes verified in the period."""


@dataclass(frozen=True)
class Line:
    """One line of an invoice, as attribution reads it."""

    kind: str
    amount: Decimal  # rounded to the currency's minor unit
    charge: Charge | None = None
    units: Sequence[TaskUnits] | None = None
    """A charge line of one subscription window: the tasks as that window saw them,
    index-aligned with the tasks attributed to (`TaskUnits(None)` for a task the window did
    not see); None: the tasks themselves."""


@dataclass(frozen=True)
class Attribution:
    amounts: list[Decimal]  # index-aligned with the tasks
    earned: list[bool]  # the task had a share of a line with a positive amount
    unattributed: Decimal
    late: Decimal = ZERO
    """The late lines (earlier periods' corrections), part of `unattributed`."""


def _per_task(charge: Charge | None, tasks: Sequence[TaskUnits]) -> list[int]:
    return [0 if t.task is None else 1 for t in tasks]


def over_budget(classes: Sequence[str], cap: int, unit: TaskUnits) -> int:
    """A task's hidden tokens of the counted `classes` above `cap`, as an invoice run counts
    them (store `hidden_over_budget`): its tokens of those classes, less its visible output
    when output is counted. Task-less usage has no budget."""
    if unit.task is None:
        return 0
    counted = sum(unit.tokens.get(name, 0) for name in classes)
    return tokens_over_budget(hidden_tokens(classes, counted, unit.visible_output), cap)


def _budgeted_tokens(charge: Charge, task: TaskUnits) -> int:
    counted = sum(task.tokens.get(name, 0) for name in charge.classes)
    cap = charge.hidden_tokens_per_task_max
    return counted if cap is None else counted - over_budget(charge.classes, cap, task)


def _tokens(charge: Charge | None, tasks: Sequence[TaskUnits]) -> list[int]:
    assert charge is not None
    if charge.markup is not None:
        return [t.cost_nanousd for t in tasks]
    return [_budgeted_tokens(charge, t) for t in tasks]


def _tasks(charge: Charge | None, tasks: Sequence[TaskUnits]) -> list[int]:
    assert charge is not None
    return [
        int(
            t.task is not None
            and t.ended
            and charged_status(charge.count, t.status)
            and charge.task_type in (ANY, t.type)
        )
        for t in tasks
    ]


def _outcomes(charge: Charge | None, tasks: Sequence[TaskUnits]) -> list[int]:
    assert charge is not None and charge.price is not None
    spec = charge.price
    if spec.model != "percentage":  # one share per matching outcome: whole numbers already
        return [sum(charge.outcome in (ANY, kind) for kind, _ in t.outcomes) for t in tasks]

    def weight(kind: str, value: Decimal) -> Decimal:
        # A percentage charge weighs each outcome by its own fee (free claims aside).
        return fee_for(spec, value) if charge.outcome in (ANY, kind) else ZERO

    return integer_weights(
        [sum((weight(kind, value) for kind, value in t.outcomes), ZERO) for t in tasks]
    )


WEIGHTS: dict[str, Callable[[Charge | None, Sequence[TaskUnits]], list[int]]] = {
    "subscription": _per_task,
    "tokens": _tokens,
    "task": _tasks,
    "outcome": _outcomes,
}
"""Each charge type's weights: non-negative integers, index-aligned with the tasks."""


def attribute(lines: Sequence[Line], tasks: Sequence[TaskUnits], currency: str) -> Attribution:
    """Share each line out to the tasks; the parts and the unattributed rest sum back exactly."""
    exponent = minor_unit(currency)
    minor = [0] * len(tasks)
    earned = [False] * len(tasks)
    unattributed = late = 0
    # The discount is shared by what the other lines gave each task, so it comes last.
    ordered = sorted(lines, key=lambda line: line.kind == "discount")
    for line in ordered:
        assert line.kind in LINE_KINDS, f"line kind {line.kind!r}"
        amount = to_minor(line.amount, currency)
        if amount == 0:  # shares nothing and earns nothing, whatever its weights
            continue
        weights = _line_weights(line, tasks, minor)
        late += amount if line.kind == "late" else 0
        if not weights or sum(weights) == 0:
            unattributed += amount
            continue
        for index, part in enumerate(allocate(amount, weights)):
            minor[index] += part
            if amount > 0 and weights[index] > 0:
                earned[index] = True
    total = sum(to_minor(line.amount, currency) for line in lines)
    assert sum(minor) + unattributed == total, "attribution sums back to the invoice"
    return Attribution(
        amounts=[Decimal(m).scaleb(-exponent) for m in minor],
        earned=earned,
        unattributed=Decimal(unattributed).scaleb(-exponent),
        late=Decimal(late).scaleb(-exponent),
    )


def _line_weights(line: Line, tasks: Sequence[TaskUnits], minor: Sequence[int]) -> list[int]:
    if not tasks or line.kind == "late":
        return []
    if line.kind == "discount":
        return [max(0, m) for m in minor]
    if line.kind == "true_up":
        return _per_task(None, tasks)
    assert line.charge is not None, "a charge line names its charge"
    seen = tasks if line.units is None else line.units
    assert len(seen) == len(tasks), "a window's tasks are aligned with the period's"
    return WEIGHTS[line.charge.type](line.charge, seen)
