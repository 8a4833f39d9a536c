"""Economics: a period's tasks, their usage and their share of revenue, into figures.

Pure: the shell loads buckets (usage summed in SQL), task facts, verified outcomes and
invoices; this module groups them per customer and task, rates plans the way invoices are
rated (`rating.fees_for`, `invoicing.totals`), attributes every line to tasks
(`attribution.attribute`) and sums `Figures`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from fractions import Fraction

from payoff.core.attribution import Attribution, Line, TaskUnits, attribute, over_budget
from payoff.core.buckets import Bucket
from payoff.core.figures import Figures
from payoff.core.invoicing import totals
from payoff.core.plan import Plan
from payoff.core.rating import UsageTotals, fees_for
from payoff.core.statuses import FINAL_STATUSES, OPEN
from payoff.core.token_classes import CLASS_PARTS, PART_COLUMNS, VISIBLE_PART


@dataclass(frozen=True)
class TaskFact:
    type: str | None
    status: str
    ended: bool  # reached a final status within the period


@dataclass
class TaskUsage:
    """One task's usage summed over its buckets."""

    tokens: dict[str, int] = field(default_factory=dict)
    """By plan token class; empty until the task has a bucket."""
    visible_output: int = 0
    hidden: int = 0
    cost_nanousd: int = 0
    cost_visible_nanousd: int = 0
    unpriced: int = 0

    def add(self, b: Bucket) -> None:
        # The hot loop of every simulation (each bucket, each scenario): the sums of
        # CLASS_PARTS written out, checked against the table below when the module loads.
        tokens = self.tokens
        if not tokens:
            tokens.update(dict.fromkeys(CLASS_PARTS, 0))
        output = b.text_output + b.reasoning
        tokens["input"] += b.uncached
        tokens["cache_read"] += b.cache_read
        tokens["cache_write"] += b.cache_write
        tokens["output"] += output
        visible = b.text_output if b.visible else 0
        self.visible_output += visible
        self.hidden += b.uncached + b.cache_read + b.cache_write + output - visible
        self.cost_nanousd += b.cost_nanousd
        self.cost_visible_nanousd += b.cost_visible_nanousd
        self.unpriced += b.unpriced


assert CLASS_PARTS == {
    "input": ("uncached",),
    "cache_read": ("cache_read",),
    "cache_write": ("cache_write",),
    "output": ("text_output", "reasoning"),
}, "TaskUsage.add sums each class's parts as CLASS_PARTS says"
assert VISIBLE_PART == "text_output", "TaskUsage.add counts text output of visible steps"
assert tuple(PART_COLUMNS) == ("uncached", "cache_read", "cache_write", "text_output", "reasoning")


@dataclass
class CustomerPeriod:
    """A customer's period: its tasks (index-aligned units and usage) and outcomes."""

    units: list[TaskUnits] = field(default_factory=list)
    usage: list[TaskUsage] = field(default_factory=list)
    outcomes: list[tuple[str, Decimal]] = field(default_factory=list)
    """Every outcome verified in the period, in the order verified (what rating reads)."""
    seats: tuple[int, ...] = ()
    """The seats held on each day of the period (set when a plan simulated is per seat)."""


TaskKey = tuple[str, str | None]


@dataclass(frozen=True)
class PeriodTasks:
    """The period's tasks in order, with what no scenario changes: facts and outcomes."""

    task_skeletons: list[tuple[str, TaskUnits]]
    """(customer, task) per task, by customer (task-less usage first), then task; no usage."""
    verified: dict[str, list[tuple[str, Decimal]]]
    """Per customer, every outcome verified in the period, in the order verified."""


def period_tasks(
    buckets: Iterable[Bucket],
    facts: Mapping[TaskKey, TaskFact],
    outcomes: Sequence[tuple[str, str, str, Decimal]],
) -> PeriodTasks:
    """Tasks with usage, tasks that ended, and tasks with verified outcomes.

    `outcomes` are (customer, task, type, value) in the order they were verified.
    """
    by_task: dict[TaskKey, list[tuple[str, Decimal]]] = defaultdict(list)
    verified: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for customer, outcome_task, kind, value in outcomes:
        by_task[(customer, outcome_task)].append((kind, value))
        verified[customer].append((kind, value))
    keys = sorted(
        {(b.customer, b.task) for b in buckets}
        | {k for k, f in facts.items() if f.ended}
        | set(by_task),
        key=lambda k: (k[0], k[1] is not None, k[1] or ""),
    )
    task_skeletons = []
    for customer, task in keys:
        fact = facts.get((customer, task), TaskFact(None, OPEN, False))
        outcomes_of = tuple(by_task.get((customer, task), ()))
        skeleton = TaskUnits(task, fact.type, fact.status, fact.ended, outcomes=outcomes_of)
        task_skeletons.append((customer, skeleton))
    return PeriodTasks(task_skeletons, dict(verified))


def customer_periods(
    buckets: Sequence[Bucket],
    facts: Mapping[TaskKey, TaskFact],
    outcomes: Sequence[tuple[str, str, str, Decimal]],
    tasks: PeriodTasks | None = None,
) -> dict[str, CustomerPeriod]:
    """Per customer: its tasks of the period (`period_tasks`, unless given: a scenario keeps
    the ledger's tasks) with their usage summed from `buckets`, and its verified outcomes."""
    tasks = tasks or period_tasks(buckets, facts, outcomes)
    usage: dict[TaskKey, TaskUsage] = defaultdict(TaskUsage)
    for b in buckets:
        usage[(b.customer, b.task)].add(b)
    result: dict[str, CustomerPeriod] = defaultdict(CustomerPeriod)
    for customer, skeleton in tasks.task_skeletons:
        used = usage.pop((customer, skeleton.task), None) or TaskUsage()
        customer_period = result[customer]
        customer_period.units.append(
            TaskUnits(skeleton.task, skeleton.type, skeleton.status, skeleton.ended, used.tokens,
                      used.visible_output, used.cost_nanousd, skeleton.outcomes)
        )  # fmt: skip
        customer_period.usage.append(used)
    assert not usage, "every bucket belongs to a task of the period"
    for customer, verified in tasks.verified.items():
        result[customer].outcomes.extend(verified)
    return dict(result)


def usage_totals(
    customer_period: CustomerPeriod,
    plan: Plan,
    period_days: int,
    output_factor: Fraction = Fraction(1),
) -> UsageTotals:
    """The whole period's totals of a customer, as if on `plan` for all of it."""
    return plan_totals(
        customer_totals(customer_period, period_days, output_factor), customer_period, plan
    )


def customer_totals(
    customer_period: CustomerPeriod, period_days: int, output_factor: Fraction = Fraction(1)
) -> UsageTotals:
    """A customer's totals whatever the plan: every field but the reasoning budgets'."""
    tokens: dict[str, int] = defaultdict(int)
    for used in customer_period.usage:
        for name, count in used.tokens.items():
            tokens[name] += count
    if output_factor != 1:  # list prices of output tracking a lower cost (see scenarios)
        tokens["output"] = round(tokens["output"] * output_factor)
    tasks: dict[tuple[str | None, str], int] = defaultdict(int)
    for t in customer_period.units:
        if t.task is not None and t.ended and t.status in FINAL_STATUSES:
            tasks[(t.type, t.status)] += 1
    return UsageTotals(
        active_days=period_days,
        period_days=period_days,
        tokens=dict(tokens),
        cost_nanousd=sum(u.cost_nanousd for u in customer_period.usage),
        unpriced_steps=sum(u.unpriced for u in customer_period.usage),
        tasks=tuple(sorted(((t, s, n) for (t, s), n in tasks.items()), key=str)),
        outcomes=tuple(customer_period.outcomes),
        seats=customer_period.seats,
    )


def plan_totals(base: UsageTotals, customer_period: CustomerPeriod, plan: Plan) -> UsageTotals:
    """`base` with what `plan`'s reasoning budgets absorb of the customer's tasks: per
    charge, only the hidden tokens of the classes it counts."""
    absorbed = {
        c.name: sum(
            over_budget(c.classes, c.hidden_tokens_per_task_max, unit)
            for unit in customer_period.units
        )
        for c in plan.charges
        if c.type == "tokens" and c.hidden_tokens_per_task_max is not None
    }
    return replace(base, absorbed=absorbed)


def plan_lines(plan: Plan, totals_in: UsageTotals, label: str) -> list[Line]:
    """The lines of the invoice `plan` would make of these totals, as real ones are made."""
    fees = fees_for(plan, totals_in, label)
    charges = {c.name: c for c in plan.charges}
    made = totals(plan, fees)
    return [
        *(Line("charge", fee.amount, charges[fee.charge]) for fee in fees),
        Line("true_up", made.minimum_true_up),
        Line("discount", -made.maximum_discount),
    ]


def task_figures(unit: TaskUnits, used: TaskUsage, amount: Decimal, earned: bool) -> Figures:
    verified = len(unit.outcomes)
    return Figures(
        revenue=amount,
        cost_nanousd=used.cost_nanousd,
        cost_visible_nanousd=used.cost_visible_nanousd,
        cost_unearned_nanousd=0 if earned else used.cost_nanousd,
        spend_verified=amount if verified else Decimal(0),
        tasks=0 if unit.task is None else 1,
        tasks_verified=1 if verified and unit.task is not None else 0,
        outcomes_verified=verified,
        tokens_visible=used.visible_output,
        tokens_hidden=used.hidden,
        unpriced_events=used.unpriced,
    )


def customer_figures(customer_period: CustomerPeriod, shared: Attribution) -> list[Figures]:
    """One Figures per task, and a last one for what no task was attributed."""
    rows = [
        task_figures(unit, used, amount, earned)
        for unit, used, amount, earned in zip(
            customer_period.units, customer_period.usage, shared.amounts, shared.earned, strict=True
        )
    ]
    rows.append(Figures(revenue=shared.unattributed, revenue_late=shared.late))
    return rows


def fixed_figures(customer_period: CustomerPeriod) -> Figures:
    """The figures of a customer's tasks that no plan changes (revenue and risks aside)."""
    result = Figures()
    for unit, used in zip(customer_period.units, customer_period.usage, strict=True):
        result.cost_nanousd += used.cost_nanousd
        result.cost_visible_nanousd += used.cost_visible_nanousd
        result.outcomes_verified += len(unit.outcomes)
        result.tokens_visible += used.visible_output
        result.tokens_hidden += used.hidden
        result.unpriced_events += used.unpriced
        if unit.task is not None:
            result.tasks += 1
            result.tasks_verified += 1 if unit.outcomes else 0
    return result


def shared_figures(customer_period: CustomerPeriod, shared: Attribution) -> Figures:
    """What a plan's attribution adds to `fixed_figures`: revenue, spend and cost unearned.

    The same sums as `customer_figures` gives, task by task (tested)."""
    result = Figures(revenue=sum(shared.amounts, shared.unattributed), revenue_late=shared.late)
    for unit, used, amount, earned in zip(
        customer_period.units, customer_period.usage, shared.amounts, shared.earned, strict=True
    ):
        if unit.outcomes:
            result.spend_verified += amount
        if not earned:
            result.cost_unearned_nanousd += used.cost_nanousd
    return result


def simulate_plans(
    plans: Sequence[Plan],
    customers: Mapping[str, CustomerPeriod],
    label: str,
    period_days: int,
    output_factor: Fraction = Fraction(1),
) -> list[Figures]:
    """Every customer on each plan for the whole period: the figures of all of them, per plan.

    What does not depend on the plan (usage totals, task counts, costs) is summed once."""
    results = [Figures() for _ in plans]
    for name in sorted(customers):
        customer_period = customers[name]
        base = customer_totals(customer_period, period_days, output_factor)
        fixed = fixed_figures(customer_period)
        for plan, result in zip(plans, results, strict=True):
            lines = plan_lines(plan, plan_totals(base, customer_period, plan), label)
            shared = attribute(lines, customer_period.units, plan.currency)
            result.add(fixed)
            result.add(shared_figures(customer_period, shared))
    return results


def simulate_plan(
    plan: Plan,
    customers: Mapping[str, CustomerPeriod],
    label: str,
    period_days: int,
    output_factor: Fraction = Fraction(1),
) -> Figures:
    """Every customer on `plan` for the whole period: the figures of all of them."""
    return simulate_plans([plan], customers, label, period_days, output_factor)[0]


KeyOf = Callable[[str, TaskUnits], str]


def grouped(
    customers: Mapping[str, CustomerPeriod],
    shares: Mapping[str, Attribution],
    key_of: KeyOf,
) -> tuple[dict[str, Figures], Figures]:
    """Rows keyed by `key_of(customer, task)` (the unattributed rest under the task-less
    key), and the total."""
    rows: dict[str, Figures] = defaultdict(Figures)
    total = Figures()
    for name in sorted(customers):
        customer_period = customers[name]
        shared = shares.get(name) or Attribution(
            [Decimal(0)] * len(customer_period.units),
            [False] * len(customer_period.units),
            Decimal(0),
        )
        figures = customer_figures(customer_period, shared)
        keys = [key_of(name, unit) for unit in customer_period.units] + [
            key_of(name, TaskUnits(None))
        ]
        for key, row in zip(keys, figures, strict=True):
            rows[key].add(row)
            total.add(row)
    return dict(rows), total
