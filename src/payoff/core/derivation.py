"""Re-deriving an invoice from ledger rows: the pure twin of an invoice run.

An invoice run sums its customer's records in SQL (`store/billing.py`) and rates the sums
(`service/rating.py`). To check an invoice without trusting those sums, `payoff verify` and
a customer's bundle re-derive it here, in Python, from the rows themselves
(`core.ledger_rows`): the same usage totals, the same fees, the same document, to the byte.

    rows --select_rows--> the rows the invoice reads (their digest: the records digest)
         --period_usage--> by day: usage, tasks dated, outcomes verified
         --window_totals--> usage totals per subscription window (their digest: inputs)
         --fees_for, late_fees, make_invoice--> the invoice

What an invoice of customer C reads, as of its `as_of` time A, for its own period and for
each earlier period it rated again for late lines (`rerated`), each period P = [start, end):

- events of C that occurred in P, received by A;
- tasks of C created by A that started in P or have a status dated in P (received by A),
  with each of their statuses received by A;
- outcome claims of C received by A, made before P's end, and made at most
  VERIFICATION_LOOKBACK_DAYS before P's start or given a verdict dated in P (received by A),
  with each verdict on them received by A, and each signal about their tasks received by A;
- C's subscriptions that start before its own period ends (an end at or after it left out),
  C's seat counts in effect from before its own period ends and recorded by A, the plan
  versions they and the invoice's windows name, the outcome contracts those plans'
  charges name, and the finalized invoices its late lines were computed against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from operator import attrgetter

from payoff.core.allowances import HOURS_PER_DAY
from payoff.core.canonical import DocumentError
from payoff.core.contract_rules import Signal, outcome_verified_at
from payoff.core.credit_notes import CreditNote, credit_note, credits_by_period
from payoff.core.invoicing import Invoice, Window, adjustment_lines, make_invoice
from payoff.core.ledger_rows import (
    AttestationRow,
    DecisionRow,
    EventRow,
    LedgerRows,
    OutcomeRow,
    PlanRow,
    SignalRow,
    SubscriptionRow,
    SupersededCost,
    TaskRow,
    TaskUpdateRow,
)
from payoff.core.outcomes import (
    VERDICT_ACTIONS,
    VERIFICATION_LOOKBACK_DAYS,
    Policy,
    Verdict,
)
from payoff.core.periods import US_PER_DAY, Period, us_from_iso
from payoff.core.plan import Plan
from payoff.core.rating import (
    Fee,
    KeyedTokens,
    UsageTotals,
    fees_for,
    has_filters,
    inputs_digest,
    keyed_in_order,
    late_fees,
)
from payoff.core.seats import SeatCount, daily_seats
from payoff.core.statuses import OPEN, task_date_us, within
from payoff.core.token_classes import (
    TOKEN_CLASSES,
    class_columns,
    hidden_tokens,
    signed_tokens,
    tokens_over_budget,
)


class DerivationError(DocumentError):
    """An invoice that cannot be re-derived from the rows given: a plan version or an
    invoice it names is not among them."""


class NotDerivable(DerivationError):
    """An invoice rated from inputs the rows do not hold (compute charges' GPU figures):
    checked by its chain link, not re-derived."""


def as_of_us(invoice: Invoice) -> int:
    """The time an invoice was rated as of: it reads what was received by then."""
    return us_from_iso(invoice.as_of)


def periods_of(invoice: Invoice) -> list[Period]:
    """The periods an invoice rated: its own, then each it rated again for late lines."""
    return [Period.month(invoice.period)] + [Period.month(r.period) for r in invoice.rerated or ()]


def plan_refs(invoice: Invoice) -> set[tuple[str, int]]:
    """(plan id, version) of each window the invoice rated, its own and its late ones."""
    windows = [*invoice.windows, *(w for r in invoice.rerated or () for w in r.windows)]
    return {_split_ref(window.plan) for window in windows}


def _split_ref(reference: str) -> tuple[str, int]:
    plan_id, _, version = reference.rpartition("@")
    return plan_id, int(version)


# -- which rows an invoice reads ------------------------------------------------------------


def select_rows(rows: LedgerRows, invoice: Invoice) -> LedgerRows:
    """Exactly the rows an invoice reads (see the module's docstring), in order."""
    customer, until = invoice.customer, as_of_us(invoice)
    own = Period.month(invoice.period)
    updates = [u for u in rows.task_updates if u.customer == customer and u.received_at_us <= until]
    verdicts = [v for v in _verdict_rows(rows) if v.received_at_us <= until]
    events: list[EventRow] = []
    tasks: dict[str, TaskRow] = {}
    outcomes: dict[str, OutcomeRow] = {}
    for period in periods_of(invoice):
        start, end = period.start_us, period.end_us
        events += [
            e
            for e in rows.events
            if e.customer == customer
            and e.received_at_us <= until
            and within(e.occurred_at_us, start, end)
        ]
        dated = {u.task for u in updates if within(u.occurred_at_us, start, end)}
        for task in rows.tasks:
            if (
                task.customer == customer
                and task.created_at_us <= until
                and (within(task.started_at_us, start, end) or task.id in dated)
            ):
                tasks[task.id] = task
        judged = {v.outcome for v in verdicts if within(v.occurred_at_us, start, end)}
        claimed_from = start - VERIFICATION_LOOKBACK_DAYS * US_PER_DAY
        for claim in rows.outcomes:
            if (
                claim.customer == customer
                and claim.received_at_us <= until
                and claim.occurred_at_us < end
                and (claim.occurred_at_us >= claimed_from or claim.id in judged)
            ):
                outcomes[claim.id] = claim
    events = costs_as_of(events, rows.superseded_costs, until)
    subscriptions = [
        _clipped(s, own.end_us)
        for s in rows.subscriptions
        if s.customer == customer and s.starts_at_us < own.end_us
    ]
    wanted_plans = plan_refs(invoice) | {(s.plan_id, s.plan_version) for s in subscriptions}
    plans = tuple(p for p in rows.plans if (p.id, p.version) in wanted_plans)
    billed = {entry for r in invoice.rerated or () for entry in r.billed}
    claimed_tasks = {claim.task for claim in outcomes.values()}
    return LedgerRows(
        plans=plans,
        contracts=tuple(c for c in rows.contracts if f"{c.id}@{c.version}" in named(plans)),
        subscriptions=tuple(subscriptions),
        seat_counts=tuple(
            c
            for c in rows.seat_counts
            if c.customer == customer
            and c.effective_at_us < own.end_us
            and c.recorded_at_us <= until
        ),
        invoices=tuple(i for i in rows.invoices if i.id in billed),
        tasks=tuple(tasks.values()),
        task_updates=tuple(u for u in updates if u.task in tasks),
        events=tuple(events),
        outcomes=tuple(outcomes.values()),
        attestations=tuple(
            a for a in rows.attestations if a.outcome in outcomes and a.received_at_us <= until
        ),
        outcome_decisions=tuple(
            d for d in rows.outcome_decisions if d.outcome in outcomes and d.received_at_us <= until
        ),
        signals=tuple(
            g
            for g in rows.signals
            if g.customer == customer
            and g.about_task in claimed_tasks
            and g.received_at_us <= until
        ),
    ).in_order()


def named(plans: Sequence[PlanRow]) -> set[str]:
    """The outcome contracts (ID@VERSION) the charges of these plan bodies name."""
    return {
        charge["contract"]
        for plan in plans
        for charge in plan.body.get("charges", ())
        if isinstance(charge, dict) and isinstance(charge.get("contract"), str)
    }


def costs_as_of(
    events: list[EventRow], superseded: Sequence[SupersededCost], until_us: int
) -> list[EventRow]:
    """The events with the costs that held at `until_us`: a cost replaced after it by a
    re-pricing is the one replaced first after it (as `store.costs.cost_columns` reads)."""
    held: dict[str, SupersededCost] = {}
    for cost in superseded:
        if cost.until_us > until_us:
            kept = held.get(cost.event)
            if kept is None or cost.until_us < kept.until_us:
                held[cost.event] = cost
    if not held:
        return events
    return [_with_cost(e, held[e.id]) if e.id in held else e for e in events]


def _with_cost(event: EventRow, cost: SupersededCost) -> EventRow:
    return event._replace(
        cost_nanousd=cost.cost_nanousd,
        cost_visible_nanousd=cost.cost_visible_nanousd,
        cost_source=cost.cost_source,
    )


def replaced_since(rows: LedgerRows, until_us: int) -> tuple[str, ...]:
    """The events whose cost a re-pricing replaced after `until_us`, by id."""
    return tuple(sorted({c.event for c in rows.superseded_costs if c.until_us > until_us}))


def _verdict_rows(rows: LedgerRows) -> list[AttestationRow | DecisionRow]:
    return [*rows.attestations, *rows.outcome_decisions]


def _clipped(subscription: SubscriptionRow, end_us: int) -> SubscriptionRow:
    """A subscription as it bears on periods ending by `end_us`: an end at or after it
    (set when a later subscription began) is left out."""
    ends = subscription.ends_at_us
    return subscription._replace(ends_at_us=None if ends is None or ends >= end_us else ends)


# -- a period, by day ---------------------------------------------------------------------


TOKEN_COLUMNS = (
    "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens",
    "reasoning_tokens",
)  # fmt: skip
"""An event's token columns: every token class is a signed sum of them (core.token_classes),
so a class summed over events is the class of the columns summed."""
_token_columns = attrgetter(*TOKEN_COLUMNS)
US_PER_HOUR = US_PER_DAY // HOURS_PER_DAY


@dataclass(frozen=True)
class TaskTokens:
    """One task's steps in a period: when its first was, and their token columns summed."""

    started_at_us: int
    columns: dict[str, int]
    visible: int
    """Output less reasoning of its visible steps: what their end users saw."""


@dataclass(frozen=True)
class PeriodUsage:
    """One customer's period as rating reads it, by day (day 0 is the period's first)."""

    period: Period
    usage: dict[int, list[int]]
    """Per day: tokens of each of TOKEN_CLASSES, then cost in nano-USD, then unpriced steps."""
    tasks: list[tuple[int, str | None, str]]
    """(day, type, status) of each task dated in the period."""
    outcomes: list[tuple[int, str, Decimal]]
    """(day, type, value) of each outcome verified in the period, in the order verified."""
    task_tokens: dict[str, TaskTokens]
    """The period's steps by task, for per-task budgets."""
    keyed: dict[tuple[int, str | None, str | None, str | None, bool], list[int]] = field(
        default_factory=dict
    )
    """Per (day, task type, provider, model): as `usage`, for filtered charges."""
    seats: tuple[SeatCount, ...] = ()
    """The customer's seat counts recorded by the as-of time, in the order recorded."""
    hours: tuple[tuple[int, tuple[int, ...]], ...] = ()
    """(hour, tokens of each of TOKEN_CLASSES) of each hour with usage, when a plan limits
    usage by window."""


def period_usage(
    rows: LedgerRows, customer: str, period: Period, until: int, plans: Mapping[str, Plan]
) -> PeriodUsage:
    """The twin of the store's `usage_by_day`, `hidden_over_budget` (its per-task sums) and
    `tasks_by_day`, and of `verified_in`."""
    by_day, by_task, by_key = _summed_events(rows, customer, period, until)
    return PeriodUsage(
        period,
        {day: _classes(sums) for day, sums in by_day.items()},
        _tasks_dated(rows, customer, period, until),
        _outcomes_verified(rows, customer, period, until, plans),
        {
            task: TaskTokens(sums[0], dict(zip(TOKEN_COLUMNS, sums[1:-1], strict=True)), sums[-1])
            for task, sums in by_task.items()
        },
        {key: _classes(sums) for key, sums in by_key.items()},
        _seat_counts(rows, customer, until),
        _hours(rows, customer, period, until)
        if any(c.limits for plan in plans.values() for c in plan.charges)
        else (),
    )


def _hours(
    rows: LedgerRows, customer: str, period: Period, until: int
) -> tuple[tuple[int, tuple[int, ...]], ...]:
    """The twin of the store's `usage_by_hour`: the period's events summed by hour."""
    by_hour: dict[int, list[int]] = defaultdict(lambda: [0] * len(TOKEN_COLUMNS))
    for e in rows.events:
        if e.customer != customer or e.received_at_us > until:
            continue
        if not period.start_us <= e.occurred_at_us < period.end_us:
            continue
        sums = by_hour[(e.occurred_at_us - period.start_us) // US_PER_HOUR]
        for index, count in enumerate(_token_columns(e)):
            sums[index] += count
    return tuple(
        (hour, tuple(_classes([*sums, 0, 0])[:-2])) for hour, sums in sorted(by_hour.items())
    )


def _seat_counts(rows: LedgerRows, customer: str, until: int) -> tuple[SeatCount, ...]:
    """The twin of the store's `seat_counts`: in the order recorded (the later wins a day)."""
    found = [c for c in rows.seat_counts if c.customer == customer and c.recorded_at_us <= until]
    found.sort(key=attrgetter("recorded_at_us"))
    return tuple(SeatCount(c.effective_at_us, c.seats) for c in found)


DayKey = tuple[int, str | None, str | None, str | None, bool]


def _summed_events(
    rows: LedgerRows, customer: str, period: Period, until: int
) -> tuple[dict[int, list[int]], dict[str, list[int]], dict[DayKey, list[int]]]:
    """The period's events summed by day (token columns, cost, unpriced steps), by day and
    key (the same, for filtered charges) and by task (first step, token columns, visible
    output): one pass."""
    start, end = period.start_us, period.end_us
    by_day: dict[int, list[int]] = defaultdict(lambda: [0] * (len(TOKEN_COLUMNS) + 2))
    by_key: dict[DayKey, list[int]] = defaultdict(lambda: [0] * (len(TOKEN_COLUMNS) + 2))
    by_task: dict[str, list[int]] = {}
    for e in rows.events:
        if e.customer != customer or e.received_at_us > until:
            continue
        if not start <= e.occurred_at_us < end:
            continue
        counts: tuple[int, ...] = _token_columns(e)
        day = (e.occurred_at_us - start) // US_PER_DAY
        for sums in (by_day[day], by_key[(day, e.task_type, e.provider, e.model, bool(e.batch))]):
            for index, count in enumerate(counts):
                sums[index] += count
            if e.cost_nanousd is None:
                sums[-1] += 1
            else:
                sums[-2] += e.cost_nanousd
        if e.task is not None:
            visible = e.output_tokens - e.reasoning_tokens if e.visible else 0
            found = by_task.get(e.task)
            if found is None:
                by_task[e.task] = [e.occurred_at_us, *counts, visible]
                continue
            found[0] = min(found[0], e.occurred_at_us)
            for index, count in enumerate((*counts, visible), start=1):
                found[index] += count
    return by_day, by_task, by_key


def _classes(sums: list[int]) -> list[int]:
    """A day's column sums as tokens of each of TOKEN_CLASSES, then cost and unpriced steps."""
    columns = dict(zip(TOKEN_COLUMNS, sums, strict=False))
    return [signed_tokens(class_columns(name), columns) for name in TOKEN_CLASSES] + sums[-2:]


def _latest_status(updates: Sequence[TaskUpdateRow]) -> dict[str, TaskUpdateRow]:
    """Each task's status latest in time; at one instant a final status beats OPEN."""
    latest: dict[str, TaskUpdateRow] = {}
    for update in sorted(updates, key=lambda u: (-u.occurred_at_us, u.status == OPEN, u.status)):
        latest.setdefault(update.task, update)
    return latest


def _tasks_dated(
    rows: LedgerRows, customer: str, period: Period, until: int
) -> list[tuple[int, str | None, str]]:
    known = [u for u in rows.task_updates if u.customer == customer and u.received_at_us <= until]
    latest = _latest_status(known)
    dated = []
    for task in rows.tasks:
        if task.customer != customer or task.created_at_us > until:
            continue
        found = latest.get(task.id)
        status = found.status if found is not None else None
        when = task_date_us(
            status, found.occurred_at_us if found is not None else None, task.started_at_us
        )
        if when is not None and within(when, period.start_us, period.end_us):
            day = (when - period.start_us) // US_PER_DAY
            dated.append((day, task.type, status if status is not None else OPEN))
    return dated


def policy_at(
    subscriptions: Sequence[SubscriptionRow],
    plans: Mapping[str, Plan],
    claimed_at_us: int,
    outcome_type: str,
) -> Policy:
    """The verification policy of a claim: its outcome charge's in the plan the customer was
    subscribed to when it was claimed (the latest to start); without one, none."""
    active = [
        s
        for s in sorted(subscriptions, key=lambda s: s.starts_at_us)
        if s.starts_at_us <= claimed_at_us
        and (s.ends_at_us is None or claimed_at_us < s.ends_at_us)
    ]
    if not active:
        return Policy()
    plan = plans.get(f"{active[-1].plan_id}@{active[-1].plan_version}")
    return plan.policy_for(outcome_type) if plan is not None else Policy()


def _verdicts(
    attestations: Sequence[AttestationRow], decisions: Sequence[DecisionRow], until: int
) -> dict[str, list[Verdict]]:
    """The verdicts received by `until`, by outcome, in time order (then received order)."""
    keyed: dict[str, list[tuple[tuple[int, int, int], Verdict]]] = defaultdict(list)
    for a in attestations:
        if a.received_at_us <= until:
            verdict = Verdict(VERDICT_ACTIONS[a.verdict], "customer", a.occurred_at_us)
            keyed[a.outcome].append(((a.occurred_at_us, a.received_at_us, 0), verdict))
    for d in decisions:
        if d.received_at_us <= until:
            verdict = Verdict(d.action, d.by, d.occurred_at_us, d.reason)
            keyed[d.outcome].append(((d.occurred_at_us, d.received_at_us, 1), verdict))
    return {
        outcome: [v for _, v in sorted(found, key=lambda kv: kv[0])]
        for outcome, found in keyed.items()
    }


def _signals_by_task(
    signals: Sequence[SignalRow], customer: str, until: int
) -> dict[str, list[SignalRow]]:
    """The customer's signals received by `until`, by the task they are about, in time
    order (then received order, then id): the twin of the store's `signals_about`."""
    found: dict[str, list[SignalRow]] = defaultdict(list)
    for g in signals:
        if g.customer == customer and g.received_at_us <= until:
            found[g.about_task].append(g)
    for listed in found.values():
        listed.sort(key=lambda g: (g.occurred_at_us, g.received_at_us, g.id))
    return found


def _outcomes_verified(
    rows: LedgerRows, customer: str, period: Period, until: int, plans: Mapping[str, Plan]
) -> list[tuple[int, str, Decimal]]:
    start, end = period.start_us, period.end_us
    judged = {
        v.outcome
        for v in _verdict_rows(rows)
        if v.received_at_us <= until and within(v.occurred_at_us, start, end)
    }
    claimed_from = start - VERIFICATION_LOOKBACK_DAYS * US_PER_DAY
    verdicts = _verdicts(rows.attestations, rows.outcome_decisions, until)
    signals = _signals_by_task(rows.signals, customer, until)
    subscriptions = [s for s in rows.subscriptions if s.customer == customer]
    found = []
    for claim in rows.outcomes:
        if not (
            claim.customer == customer
            and claim.received_at_us <= until
            and claim.occurred_at_us < end
            and (claim.occurred_at_us >= claimed_from or claim.id in judged)
        ):
            continue
        policy = policy_at(subscriptions, plans, claim.occurred_at_us, claim.type)
        bearing = [
            Signal(g.name, g.occurred_at_us)
            for g in signals.get(claim.task, ())
            if g.outcome in (None, claim.id)
        ]
        at = outcome_verified_at(
            claim.id, claim.occurred_at_us, verdicts.get(claim.id, []), policy, until, bearing
        )
        if at is not None and within(at, start, end):
            value = Decimal(claim.value) if claim.value is not None else Decimal(0)
            found.append((at, claim.id, claim.type, value))
    found.sort(key=lambda f: (f[0], f[1]))
    return [((at - start) // US_PER_DAY, kind, value) for at, _, kind, value in found]


def _absorbed_by_day(usage: PeriodUsage, classes: Sequence[str], budget: int) -> dict[int, int]:
    """The twin of the store's `hidden_over_budget`: per day a task started on (its first
    step in the period), the hidden tokens of `classes` it spent beyond `budget`."""
    terms = [class_columns(name) for name in classes]
    by_day: dict[int, int] = defaultdict(int)
    for task in usage.task_tokens.values():
        counted = sum(signed_tokens(t, task.columns) for t in terms)
        over = tokens_over_budget(hidden_tokens(classes, counted, task.visible), budget)
        by_day[(task.started_at_us - usage.period.start_us) // US_PER_DAY] += over
    return by_day


def window_totals(usage: PeriodUsage, plan: Plan, window: Window) -> UsageTotals:
    """The twin of the run's window totals: a subscription window is a sum of its days."""
    first, last = window.first_day - 1, window.last_day

    def inside(day: int) -> bool:
        return first <= day < last

    days = [sums for day, sums in usage.usage.items() if inside(day)]
    tasks: dict[tuple[str | None, str], int] = defaultdict(int)
    for day, task_type, status in usage.tasks:
        if inside(day):
            tasks[(task_type, status)] += 1
    absorbed = {}
    for charge in plan.charges:
        if charge.type == "tokens" and charge.hidden_tokens_per_task_max is not None:
            by_day = _absorbed_by_day(usage, charge.classes, charge.hidden_tokens_per_task_max)
            absorbed[charge.name] = sum(n for day, n in by_day.items() if inside(day))
    return UsageTotals(
        active_days=last - first,
        period_days=usage.period.days,
        tokens={name: sum(s[i] for s in days) for i, name in enumerate(TOKEN_CLASSES)},
        absorbed=absorbed,
        cost_nanousd=sum(s[-2] for s in days),
        unpriced_steps=sum(s[-1] for s in days),
        tasks=tuple(sorted(((t, s, n) for (t, s), n in tasks.items()), key=str)),
        outcomes=tuple((kind, value) for day, kind, value in usage.outcomes if inside(day)),
        keyed=_window_keys(usage, inside) if has_filters(plan) else (),
        gpu_seconds=_no_gpu_seconds(plan),
        seats=tuple(daily_seats(usage.seats, usage.period.start_us, first, last))
        if any(charge.per_seat for charge in plan.charges)
        else (),
        hours=tuple(
            (hour, tokens)
            for hour, tokens in usage.hours
            if first * HOURS_PER_DAY <= hour < last * HOURS_PER_DAY
        )
        if any(charge.limits for charge in plan.charges)
        else (),
    )


def _window_keys(usage: PeriodUsage, inside: Callable[[int], bool]) -> tuple[KeyedTokens, ...]:
    """The twin of the run's usage by key: the window's days summed, in key order."""
    sums: dict[tuple[str | None, str | None, str | None, bool], list[int]] = {}
    for (day, task_type, provider, model, batch), values in usage.keyed.items():
        if inside(day):
            key = (task_type, provider, model, batch)
            sums[key] = [a + b for a, b in zip(sums.get(key, [0] * 6), values, strict=True)]
    return keyed_in_order(sums)


def _no_gpu_seconds(plan: Plan) -> dict[str, Decimal]:
    """GPU-seconds come from the price overrides an invoice run was given, which the rows
    do not hold: an invoice with a compute charge is not re-derived."""
    for charge in plan.charges:
        if charge.compute is not None:
            raise NotDerivable(
                f"charge {charge.name!r} counts GPU-seconds from the price overrides the run "
                "was given; they are not among the rows, so it cannot be re-derived"
            )
    return {}


# -- the invoice ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RatedPeriod:
    fees: list[Fee]
    plan: Plan
    """The last window's plan: its minimum and maximum apply."""
    inputs: list[UsageTotals]


def rate_windows(
    rows: LedgerRows,
    customer: str,
    period: Period,
    until: int,
    windows: Sequence[Window],
    plans: Mapping[str, Plan],
) -> RatedPeriod:
    """A period's own fees, window by window, as an invoice run rates them."""
    if not windows:
        raise DerivationError(f"{period.label}: no subscription window to rate")
    usage = period_usage(rows, customer, period, until, plans)
    fees: list[Fee] = []
    inputs = []
    for window in windows:
        plan = _plan(plans, window.plan)
        totals = window_totals(usage, plan, window)
        fees += fees_for(plan, totals, period.label)
        inputs.append(totals)
    return RatedPeriod(fees, _plan(plans, windows[-1].plan), inputs)


def _plan(plans: Mapping[str, Plan], reference: str) -> Plan:
    found = plans.get(reference)
    if found is None:
        raise DerivationError(f"plan {reference} is not among the rows")
    return found


def rederive_invoice(
    invoice: Invoice, rows: LedgerRows, plans: Mapping[str, Plan], records_digest: str | None
) -> Invoice:
    """The invoice re-derived from rows (those `select_rows` chose) and the plans they name
    (by "ID@VERSION"), with the seal it was finalized with and the records digest given (the
    digest of the rows, when the seal records one): equal to the invoice, to the byte, when
    nothing it was computed from changed."""
    until = as_of_us(invoice)
    own = Period.month(invoice.period)
    rated = rate_windows(rows, invoice.customer, own, until, invoice.windows, plans)
    billed = {row.id: row for row in rows.invoices}
    late: list[Fee] = []
    inputs = list(rated.inputs)
    for rerated in invoice.rerated or ():
        period = Period.month(rerated.period)
        now = rate_windows(rows, invoice.customer, period, until, rerated.windows, plans)
        current = now.fees + adjustment_lines(now.plan, now.fees, rerated.period)
        already = []
        for invoice_id in rerated.billed:
            if invoice_id not in billed:
                raise DerivationError(
                    f"late lines of {rerated.period}: invoice {invoice_id} they were computed "
                    "against is not among the rows"
                )
            earlier = Invoice.from_document(billed[invoice_id].document, "finalized")
            already += earlier.billed_for(rerated.period)
        late += late_fees(now.plan, current, already, rerated.period)
        inputs += now.inputs
    derived = make_invoice(
        invoice_id=invoice.id,
        customer=invoice.customer,
        period=invoice.period,
        status=invoice.status,
        plan=rated.plan,
        fees=rated.fees,
        late=late,
        as_of=invoice.as_of,
        plan_digest=invoice.windows[-1].plan_digest,
        inputs_digest=inputs_digest(inputs),
        windows=invoice.windows,
    )
    seal = invoice.seal
    if seal is not None and seal.records_digest is not None:
        seal = replace(seal, records_digest=records_digest)
    return replace(derived, basis=invoice.basis, rerated=invoice.rerated, seal=seal)


def rederive_credit_note(note: CreditNote, applied_on: Invoice) -> CreditNote:
    """A credit note re-derived from the invoice it is applied on (its negative late lines
    for the note's period), against the invoice it names, with its seal."""
    lines = credits_by_period(applied_on).get(note.period, [])
    return replace(credit_note(applied_on, note.invoice, note.period, lines), seal=note.seal)
