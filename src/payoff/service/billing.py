"""Billing use cases: plans, customers, subscriptions, quotes and invoices.

An invoice run rates each customer's subscription windows in the period from aggregates the
store computes in SQL (by customer and day), adds late-usage lines for earlier finalized
periods whose records arrived after they were billed, and stores a draft. The document is a
pure function of (aggregates, plan versions, period, as-of time).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from payoff.core.errors import PayoffError
from payoff.core.invoicing import adjustment_lines, digest, document, transition
from payoff.core.periods import US_PER_DAY, Period
from payoff.core.plan import MAX_NUMBER, Plan
from payoff.core.rating import DISCOUNT_LINE, TRUE_UP_LINE, Fee, UsageTotals, late_fees, quote, rate
from payoff.plan_files import load_plan, parse_plan, plan_from_body
from payoff.service.clock import now_us
from payoff.service.outcomes import verified_in
from payoff.store.billing import DayOutcome, StoredInvoice, StoredPlan, Subscription
from payoff.store.protocol import Store

FINAL = ("finalized", "paid")
LATE_LOOKBACK_PERIODS = 24
"""How many earlier finalized periods an invoice run checks for late usage."""


class BillingError(PayoffError):
    """A billing request that cannot be carried out; the message says why."""


def iso(moment_us: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=moment_us)
    return moment.isoformat().replace("+00:00", "Z")


# -- plans, customers, subscriptions -----------------------------------------------------


def apply_plan(store: Store, path: str | Path) -> tuple[Plan, bool, list[str]]:
    """Store a plan file's version: (plan, whether it is new, warnings)."""
    return _apply(store, *load_plan(path))


def apply_plan_text(store: Store, text: str, source: str) -> tuple[Plan, bool, list[str]]:
    """As apply_plan, from a plan's YAML text."""
    return _apply(store, *parse_plan(text, source))


def _apply(store: Store, plan: Plan, body: dict[str, Any]) -> tuple[Plan, bool, list[str]]:
    created = store.put_plan(plan.id, plan.version, plan.currency, body, digest(body), now_us())
    seen_tasks, seen_outcomes = store.known_types()
    return plan, created, plan.warnings(seen_tasks, seen_outcomes)


def plan_of(stored: StoredPlan) -> Plan:
    return plan_from_body(stored.body)


def find_plan(store: Store, reference: str) -> StoredPlan:
    """A plan by `ID` (latest version) or `ID@VERSION`."""
    plan_id, _, version = reference.partition("@")
    if version and not (version.isascii() and version.isdigit() and len(version) <= 9):
        raise BillingError(f"plan version must be a number below 10^9, got {reference!r}")
    found = store.get_plan(plan_id, int(version) if version else None)
    if found is None:
        raise BillingError(f"no plan {reference!r}; apply it with `payoff plans apply FILE`")
    return found


FIRST_DAY, LAST_DAY = dt.date(1970, 1, 1), dt.date(8999, 12, 31)
"""Subscription days lie where records may: 1970-01-01 to 8999-12-31."""


def _day_start_us(day: dt.date) -> int:
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BillingError(f"a day is from {FIRST_DAY} to {LAST_DAY}, got {day}")
    return Period.month(f"{day.year:04d}-{day.month:02d}").start_us + (day.day - 1) * US_PER_DAY


def _check_not_finalized(store: Store, customer: str, day: dt.date) -> None:
    """A subscription change may not reach back into a period already billed."""
    label = f"{day.year:04d}-{day.month:02d}"
    billed = store.list_invoices(customer, statuses=FINAL, since_period=label, limit=None)
    if billed:
        raise BillingError(
            f"{customer}'s invoice for {billed[-1].period} is finalized: a subscription change "
            f"must start after it, not on {day}"
        )


def subscribe(store: Store, customer: str, reference: str, starts: dt.date) -> StoredPlan:
    """Put a customer on a plan version from a day; the previous subscription ends then.

    A customer keeps one currency (late usage is billed on later invoices, in it), and a
    change cannot start inside a period already finalized.
    """
    plan = find_plan(store, reference)
    _check_not_finalized(store, customer, starts)
    start_us = _day_start_us(starts)
    previous = store.subscriptions(0, start_us + 1, customer)
    for sub in previous:
        currency = find_plan(store, f"{sub.plan_id}@{sub.plan_version}").currency
        if currency != plan.currency:
            raise BillingError(
                f"{customer} is billed in {currency}; plan {plan.id}@{plan.version} is in "
                f"{plan.currency}: a customer's currency does not change"
            )
    store.subscribe(customer, plan.id, plan.version, start_us, now_us())
    return plan


def unsubscribe(store: Store, customer: str, ends: dt.date) -> None:
    """End a customer's subscription at the start of a day (it is not billed from then)."""
    _check_not_finalized(store, customer, ends)
    if not store.end_subscription(customer, _day_start_us(ends), now_us()):
        raise BillingError(f"{customer} has no subscription running on {ends}")


# -- quotes ------------------------------------------------------------------------------


def quote_document(
    plan: Plan, quantities: dict[str, Decimal], values: dict[str, list[Decimal]]
) -> dict[str, Any]:
    names = {charge.name for charge in plan.charges}
    unknown = sorted((set(quantities) | set(values)) - names)
    if unknown:
        raise BillingError(f"no charge named {', '.join(unknown)} in plan {plan.id}")
    too_large = sorted(name for name, q in quantities.items() if q >= MAX_NUMBER)
    too_large += sorted(name for name, vs in values.items() if any(v >= MAX_NUMBER for v in vs))
    if too_large:
        raise BillingError(f"quantities and values stay below {MAX_NUMBER:,}: {too_large}")
    for charge in plan.charges:
        by_value = charge.price is not None and charge.price.model == "percentage"
        if by_value and charge.name in quantities:
            raise BillingError(f"charge {charge.name!r} prices values: use --values, not --units")
        if not by_value and charge.name in values:
            raise BillingError(f"charge {charge.name!r} prices units: use --units, not --values")
    fees = quote(plan, quantities, values)
    full = document(
        invoice_id="quote",
        customer="",
        period="quote",
        status="quote",
        plan=plan,
        fees=fees,
        as_of="",
        plan_digest="",
        inputs_digest="",
    )
    keep = ("fees", "subtotal", "minimum_true_up", "maximum_discount", "total")
    return {key: full[key] for key in keep}


# -- rating ------------------------------------------------------------------------------


@dataclass
class _PeriodUsage:
    """The period's aggregates of every customer, by day, from the store."""

    usage: dict[str, list[Any]]
    tasks: dict[str, list[Any]]
    outcomes: dict[str, list[Any]]
    budgets: dict[tuple[tuple[str, ...], int], dict[str, list[Any]]]


def _by_customer(rows: Iterable[Any]) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        grouped[row.customer].append(row)
    return grouped


def _load_period(
    store: Store, period: Period, as_of_us: int, customer: str | None, plans: Iterable[Plan]
) -> _PeriodUsage:
    args = (period.start_us, period.end_us, as_of_us)
    budgets = {
        (c.classes, c.hidden_tokens_per_task_max)
        for plan in plans
        for c in plan.charges
        if c.type == "tokens" and c.hidden_tokens_per_task_max is not None
    }
    return _PeriodUsage(
        usage=_by_customer(store.usage_by_day(*args, customer=customer)),
        tasks=_by_customer(store.tasks_by_day(*args, customer=customer)),
        outcomes=_by_customer(_verified_by_day(store, period, as_of_us, customer)),
        budgets={
            (classes, cap): _by_customer(
                store.hidden_over_budget(*args, classes, cap, customer=customer)
            )
            for classes, cap in budgets  # type: ignore[misc]
        },
    )


def _verified_by_day(
    store: Store, period: Period, as_of_us: int, customer: str | None
) -> list[DayOutcome]:
    """Outcomes verified in the period, by the day they were verified: what is billed."""
    return [
        DayOutcome(
            found.outcome.customer,
            (found.verified_at_us - period.start_us) // US_PER_DAY,
            found.outcome.type,
            found.outcome.value if found.outcome.value is not None else Decimal(0),
        )
        for found in verified_in(store, period, as_of_us, customer)
    ]


def _window_days(period: Period, sub: Subscription) -> tuple[int, int]:
    first = max(0, (sub.starts_at_us - period.start_us) // US_PER_DAY)
    last = (
        period.days
        if sub.ends_at_us is None
        else min(period.days, -(-(sub.ends_at_us - period.start_us) // US_PER_DAY))
    )
    return first, last


def _totals(
    data: _PeriodUsage, plan: Plan, customer: str, days: tuple[int, int], period: Period
) -> UsageTotals:
    first, last = days

    def inside(row: Any) -> bool:
        return first <= row.day < last

    usage = [row for row in data.usage.get(customer, ()) if inside(row)]
    tasks: dict[tuple[str | None, str], int] = defaultdict(int)
    for row in data.tasks.get(customer, ()):
        if inside(row):
            tasks[(row.type, row.status)] += row.tasks
    absorbed = {
        c.name: sum(
            row.absorbed
            for row in data.budgets[(c.classes, c.hidden_tokens_per_task_max)].get(customer, ())
            if inside(row)
        )
        for c in plan.charges
        if c.type == "tokens" and c.hidden_tokens_per_task_max is not None
    }
    return UsageTotals(
        active_days=last - first,
        period_days=period.days,
        tokens={
            name: sum(getattr(row, name) for row in usage)
            for name in ("input", "cache_read", "cache_write", "output")
        },
        absorbed=absorbed,
        cost_nanousd=sum(row.cost_nanousd for row in usage),
        unpriced_steps=sum(row.unpriced_steps for row in usage),
        tasks=tuple(sorted(((t, s, n) for (t, s), n in tasks.items()), key=str)),
        outcomes=tuple(
            (row.type, row.value) for row in data.outcomes.get(customer, ()) if inside(row)
        ),
    )


@dataclass(frozen=True)
class _Rated:
    fees: list[Fee]
    plan: Plan  # the period's last plan: its currency, minimum and maximum apply
    plan_digest: str
    inputs: list[UsageTotals]
    windows: list[dict[str, Any]]


def _rate_period(
    store: Store, period: Period, as_of_us: int, customer: str | None
) -> dict[str, _Rated]:
    """Every subscribed customer's own fees for the period, as of a time."""
    subs = store.subscriptions(period.start_us, period.end_us, customer)
    stored = {
        (s.plan_id, s.plan_version): find_plan(store, f"{s.plan_id}@{s.plan_version}") for s in subs
    }
    plans = {key: plan_of(value) for key, value in stored.items()}
    data = _load_period(store, period, as_of_us, customer, plans.values())
    rated: dict[str, _Rated] = {}
    for sub in subs:
        key = (sub.plan_id, sub.plan_version)
        plan, days = plans[key], _window_days(period, sub)
        totals = _totals(data, plan, sub.customer, days, period)
        earlier = rated.get(sub.customer)
        if earlier is not None and earlier.plan.currency != plan.currency:
            raise BillingError(f"{sub.customer}: plans in {period.label} differ in currency")
        window = {
            "plan": f"{plan.id}@{plan.version}",
            "plan_digest": stored[key].digest,
            "first_day": days[0] + 1,
            "last_day": days[1],
        }
        rated[sub.customer] = _Rated(
            fees=(earlier.fees if earlier else []) + rate(plan, totals, period.label),
            plan=plan,
            plan_digest=stored[key].digest,
            inputs=(earlier.inputs if earlier else []) + [totals],
            windows=(earlier.windows if earlier else []) + [window],
        )
    return rated


def _fees_of(invoice: StoredInvoice, period: str) -> list[Fee]:
    """What an invoice billed for a period: its own lines and adjustments, or its late lines
    for that period."""
    fees = []
    document = invoice.document
    for line in document["fees"]:
        line_period = line.get("late_period", invoice.period)
        if line_period == period:
            fees.append(
                Fee(
                    line["charge"],
                    Decimal(line["units"]),
                    Decimal(line["precise_amount"]),
                    Decimal(line["amount"]),
                    line_period,
                    "late_period" in line,
                )
            )
    if invoice.period == period:
        true_up, discount = (
            Decimal(document["minimum_true_up"]),
            Decimal(document["maximum_discount"]),
        )
        fees.append(Fee(TRUE_UP_LINE, Decimal(0), true_up, true_up, period))
        fees.append(Fee(DISCOUNT_LINE, Decimal(0), -discount, -discount, period))
    return fees


def _late_lines(
    store: Store,
    customer: str,
    period: Period,
    as_of_us: int,
    billed: list[StoredInvoice],
    deemed_days: int,
) -> tuple[list[Fee], list[UsageTotals]]:
    """Lines for earlier finalized periods whose fees moved since they were billed.

    `billed` holds the customer's finalized and paid invoices of the look-back window;
    `deemed_days` is the longest acceptance window of any plan.
    """
    lines: list[Fee] = []
    inputs: list[UsageTotals] = []
    earlier_periods = sorted({i.period for i in billed if i.period < period.label}, reverse=True)
    for label in earlier_periods[:LATE_LOOKBACK_PERIODS]:
        earlier = Period.month(label)
        billed_as_of = max(i.as_of_us for i in billed if i.period == label)
        # Records of the period that arrived after it was billed, or verdicts (a reversal)
        # on the customer's outcomes: the period is re-rated.
        moved = store.received_between(
            customer, earlier.start_us, earlier.end_us, billed_as_of, as_of_us
        ) or store.verdicts_received_between(customer, billed_as_of, as_of_us)
        moved = moved or store.task_updates_received_between(customer, billed_as_of, as_of_us)
        # Claims that arrived late, or whose acceptance deadline may have passed since.
        claimed_from = billed_as_of - deemed_days * US_PER_DAY if deemed_days else as_of_us + 1
        moved = moved or store.outcomes_moved(
            customer, claimed_from, billed_as_of, as_of_us, earlier.end_us
        )
        if not moved:
            continue
        now = _rate_period(store, earlier, as_of_us, customer).get(customer)
        if now is None:
            continue
        # The earlier period is re-rated whole, with its own plan's minimum and cap.
        current = now.fees + adjustment_lines(now.plan, now.fees, label)
        already = [fee for invoice in billed for fee in _fees_of(invoice, label)]
        lines += late_fees(now.plan, current, already, label)
        inputs += now.inputs
    return lines, inputs


def _longest_acceptance_window(store: Store) -> int:
    """The longest `accept_after_days` of any plan (0 when none deems claims)."""
    longest = 0
    for stored in store.list_plans():
        for charge in plan_of(stored).charges:
            if charge.type == "outcome" and charge.policy.accept_after_days is not None:
                longest = max(longest, charge.policy.accept_after_days)
    return longest


def _invoice_id(customer: str, period: str, existing: list[StoredInvoice]) -> str:
    """The period's draft keeps its id; after voids, a new one is numbered."""
    for invoice in existing:
        if invoice.status == "draft":
            return invoice.id
    return f"{customer}-{period}" + (f"-{len(existing) + 1}" if existing else "")


def _period(label: str) -> Period:
    try:
        return Period.month(label)
    except ValueError as exc:
        raise BillingError(str(exc)) from None


def run_invoices(
    store: Store, period_label: str, customer: str | None = None, as_of_us: int | None = None
) -> list[dict[str, Any]]:
    """Draft invoices for a period (replacing earlier drafts); finalized ones are kept."""
    period = _period(period_label)
    now = store.stable_time(now_us)
    if as_of_us is not None and as_of_us < 0:
        raise BillingError("the as-of time is before 1970, earlier than any record")
    if as_of_us is not None and as_of_us > now:
        # Records received between now and a future as-of time would count as billed
        # without being on the invoice: rating only looks back.
        raise BillingError(f"the as-of time {iso(as_of_us)} is in the future")
    as_of_us = now if as_of_us is None else as_of_us
    this_period: dict[str, list[StoredInvoice]] = defaultdict(list)
    for invoice in store.list_invoices(customer, period.label):
        this_period[invoice.customer].append(invoice)
    billed: dict[str, list[StoredInvoice]] = defaultdict(list)
    since = _months_before(period, LATE_LOOKBACK_PERIODS)
    for invoice in store.list_invoices(customer, statuses=FINAL, since_period=since, limit=None):
        billed[invoice.customer].append(invoice)
        if invoice.as_of_us > as_of_us:
            # An earlier as-of would un-bill what the finalized invoice already counted.
            raise BillingError(
                f"invoice {invoice.id} was rated as of {iso(invoice.as_of_us)}, after "
                f"{iso(as_of_us)}: run with a later --as-of"
            )
    deemed_days = _longest_acceptance_window(store)
    documents = []
    for name, rated in sorted(_rate_period(store, period, as_of_us, customer).items()):
        if any(i.status in FINAL for i in this_period[name]):
            continue
        late, late_inputs = _late_lines(store, name, period, as_of_us, billed[name], deemed_days)
        inputs = rated.inputs + late_inputs
        documents.append(
            document(
                invoice_id=_invoice_id(name, period.label, this_period[name]),
                customer=name,
                period=period.label,
                status="draft",
                plan=rated.plan,
                fees=rated.fees,
                late=late,
                as_of=iso(as_of_us),
                plan_digest=rated.plan_digest,
                inputs_digest=_inputs_digest(inputs),
                windows=rated.windows,
                basis=_basis_of(billed[name], period),
            )
        )
    # One transaction for the whole run: every draft lands, or none does.
    drafts = [{key: value for key, value in d.items() if key != "status"} for d in documents]
    store.save_drafts(drafts, as_of_us, now_us())
    return documents


def _inputs_digest(inputs: list[UsageTotals]) -> str:
    """sha256 of the aggregates an invoice was rated from (canonical JSON, keys in order)."""
    encoded = msgspec.json.encode(inputs, order="sorted")
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def _months_before(period: Period, months: int) -> str:
    for _ in range(months):
        period = period.previous()
    return period.label


# -- the invoice lifecycle ---------------------------------------------------------------


def show(store: Store, invoice_id: str) -> dict[str, Any]:
    invoice = store.get_invoice(invoice_id)
    if invoice is None:
        raise BillingError(f"no invoice {invoice_id!r}")
    shown = {**invoice.document, "status": invoice.status}
    notes = store.credit_notes(invoice=invoice_id)
    if notes:
        # A note applied on an invoice since voided no longer stands (it is kept, marked).
        applied = {n["applied_on"]: store.get_invoice(n["applied_on"]) for n in notes}
        shown["credit_notes"] = [
            {
                **n,
                "status": "void"
                if (a := applied[n["applied_on"]]) and a.status == "void"
                else "issued",
            }
            for n in notes
        ]
    return shown


def act(store: Store, invoice_id: str, action: str) -> dict[str, Any]:
    """finalize, pay or void an invoice, by the lifecycle table."""
    invoice = show(store, invoice_id)
    current = invoice["status"]
    try:
        new = transition(current, action)
    except ValueError as exc:
        raise BillingError(f"invoice {invoice_id}: {exc}") from None
    if action == "void":
        _check_no_later_lines(store, invoice)
    if action == "finalize":
        _check_basis(store, invoice)
    if not store.set_invoice_status(invoice_id, current, new, now_us()):
        raise BillingError(f"invoice {invoice_id} changed while being {action}d; try again")
    if action == "finalize":
        _issue_credit_notes(store, invoice)
    return show(store, invoice_id)


def _issue_credit_notes(store: Store, invoice: dict[str, Any]) -> None:
    """Negative late lines credit an earlier finalized invoice: a credit note against it,
    applied on this one. Nothing finalized is edited."""
    credits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in invoice["fees"]:
        if "late_period" in line and Decimal(line["amount"]) < 0:
            credits[line["late_period"]].append(line)
    for period, lines in sorted(credits.items()):
        against = store.list_invoices(invoice["customer"], period, statuses=FINAL, limit=None)
        if not against:
            continue
        total = sum((Decimal(line["amount"]) for line in lines), Decimal(0))
        store.save_credit_note(
            {
                "id": f"{invoice['id']}-credit-{period}",
                "invoice": against[-1].id,
                "customer": invoice["customer"],
                "period": period,
                "applied_on": invoice["id"],
                "currency": invoice["currency"],
                "lines": lines,
                "total": format(total, "f"),
            },
            now_us(),
        )


def _basis(store: Store, customer: str, period: Period) -> list[str]:
    """The finalized invoices a draft was rated against: its late lines depend on them."""
    since = _months_before(period, LATE_LOOKBACK_PERIODS)
    return _basis_of(
        store.list_invoices(customer, statuses=FINAL, since_period=since, limit=None), period
    )


def _basis_of(billed: list[StoredInvoice], period: Period) -> list[str]:
    return sorted(f"{i.id}:{i.status}" for i in billed if i.period < period.label)


def _check_basis(store: Store, invoice: dict[str, Any]) -> None:
    """Refuse to finalize a draft rated before another invoice of the customer changed."""
    if invoice.get("basis") != _basis(store, invoice["customer"], Period.month(invoice["period"])):
        raise BillingError(
            f"invoice {invoice['id']} was rated before another of {invoice['customer']}'s "
            "invoices was finalized or voided: run the period again, then finalize"
        )


def _check_no_later_lines(store: Store, invoice: dict[str, Any]) -> None:
    """A period whose late lines sit on a later finalized invoice cannot be re-billed."""
    for other in store.list_invoices(invoice["customer"], statuses=FINAL):
        if any(line.get("late_period") == invoice["period"] for line in other.document["fees"]):
            raise BillingError(
                f"invoice {other.id} bills late lines of {invoice['period']}: void it first, "
                f"or keep {invoice['id']}"
            )


def invoice_json(document: dict[str, Any]) -> str:
    """An invoice as JSON text: keys sorted, so the same invoice is the same bytes."""
    return json.dumps(document, sort_keys=True, indent=2) + "\n"


def list_invoices(
    store: Store,
    customer: str | None = None,
    period: str | None = None,
    status: str | None = None,
    *,
    limit: int | None = None,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Invoices as documents; all of them (up to the store's bound) unless `limit` is given."""
    found = (
        store.list_invoices(customer, period, status)
        if limit is None
        else store.list_invoices(customer, period, status, limit=limit, offset=offset)
    )
    return [{**i.document, "status": i.status} for i in found]
