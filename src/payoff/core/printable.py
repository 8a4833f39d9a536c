"""Invoices and credit notes as documents for a person: who issues and who pays, the
number, dates, a line per charge in words, unit prices, tax and the amount due.

    invoice + plans + issuer + customer + number and dates  ->  PrintableInvoice
    credit note + the invoice it corrects + issuer + ...     ->  PrintableInvoice (a note)

Pure: values in, one value out; the shells turn it into HTML or PDF. Amounts are the
invoice's own (already rounded once, when each fee was made); tax is the one new amount:

    tax = round(total x tax rate) to the currency's minor unit, with the plan's rounding
    amount due = total + tax

`amount_due()` is that rule, the one place for it: the printed documents and the invoice
shown as JSON both take their tax and amount due from it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from payoff.core.canonical import DocumentError
from payoff.core.credit_notes import CreditNote
from payoff.core.currency import round_money
from payoff.core.errors import Refused
from payoff.core.invoicing import Invoice, plain
from payoff.core.money import ZERO
from payoff.core.plan import ANY, Charge, Plan
from payoff.core.pricing.spec import PriceSpec
from payoff.core.rating import DISCOUNT_LINE, TRUE_UP_LINE, Fee
from payoff.core.token_classes import TOKEN_CLASSES

MAX_TAX_RATE = Decimal(1)
MAX_PAYMENT_TERMS_DAYS = 365
NUMBER_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,31}")
CREDIT_NOTE_PREFIX = "CN"

TOKEN_WORDS = {
    "input": "Input tokens (uncached)",
    "cache_read": "Cached input tokens",
    "cache_write": "Cache write tokens",
    "output": "Output tokens",
}
assert set(TOKEN_WORDS) == set(TOKEN_CLASSES)
ADJUSTMENT_WORDS = {TRUE_UP_LINE: "Minimum commitment true-up", DISCOUNT_LINE: "Spending cap"}


class IssuerError(Refused):
    """The issuer's settings are malformed; the message names the field."""


@dataclass(frozen=True)
class Issuer:
    """Who sends the invoice, from the issuer settings (kept on an invoice when finalized)."""

    name: str
    address: str = ""
    tax_id: str | None = None
    email: str | None = None
    payment_terms_days: int = 30
    tax_rate: Decimal | None = None
    """A fraction (0.2 for 20 %), applied to each invoice's total; None: no tax line."""
    tax_label: str = "Tax"
    logo: str | None = None
    """A path to an image, inlined when the document is rendered."""
    number_prefix: str = "INV"

    def validate(self) -> list[str]:
        errors = [] if self.name.strip() else ["name: the issuer needs a name"]
        if not 0 <= self.payment_terms_days <= MAX_PAYMENT_TERMS_DAYS:
            errors.append(f"payment_terms_days: 0 to {MAX_PAYMENT_TERMS_DAYS}")
        rate = self.tax_rate
        if rate is not None and not (rate.is_finite() and ZERO <= rate <= MAX_TAX_RATE):
            errors.append(f"tax_rate: a fraction from 0 to 1 (0.2 for 20 %), got {rate}")
        if not NUMBER_PREFIX_PATTERN.fullmatch(self.number_prefix):
            errors.append("number_prefix: letters, digits and '-', at most 32")
        return errors

    def to_json(self) -> str:
        """The issuer as kept on a finalized invoice."""
        value: dict[str, Any] = {
            "name": self.name,
            "address": self.address,
            "tax_id": self.tax_id,
            "email": self.email,
            "payment_terms_days": self.payment_terms_days,
            "tax_rate": None if self.tax_rate is None else plain(self.tax_rate),
            "tax_label": self.tax_label,
            "logo": self.logo,
            "number_prefix": self.number_prefix,
        }
        return json.dumps(value, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Issuer:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise DocumentError("issuer: expected an object")
        rate = value.get("tax_rate")
        return cls(**{**value, "tax_rate": None if rate is None else Decimal(rate)})


NO_ISSUER = Issuer(name="(issuer not configured)")


@dataclass(frozen=True)
class Party:
    """A customer as the document names it."""

    id: str
    name: str | None = None
    address: str = ""
    email: str | None = None
    tax_id: str | None = None


@dataclass(frozen=True)
class PrintableLine:
    description: str
    quantity: Decimal
    unit: str
    """What the quantity counts: "tokens", "tasks", "month", "USD of provider cost"."""
    unit_price: str
    """The price of one unit in words ("0.002", "2.50 per 1,000", "tiered"); "" when none."""
    amount: Decimal
    note: str = ""
    """Late usage for an earlier period, or how tiers came to the amount."""


@dataclass(frozen=True)
class Reference:
    """Another document this one names: a credit note against an invoice, or the invoice a
    credit note corrects."""

    id: str
    number: str | None
    date: dt.date | None
    amount: Decimal
    deducted_on: str | None = None
    """For a credit note: the invoice (its number, else its id) it is deducted on."""

    @property
    def name(self) -> str:
        return self.number or self.id


@dataclass(frozen=True)
class PrintableInvoice:
    """An invoice, or a credit note (`kind`), ready to be laid out."""

    kind: Literal["invoice", "credit_note"]
    id: str
    number: str | None
    """None on a draft: numbers are given when an invoice is finalized."""
    status: str
    issuer: Issuer
    customer: Party
    currency: str
    period: str
    period_start: dt.date
    period_end: dt.date
    """The last day of the period, included."""
    issued_on: dt.date | None
    due_on: dt.date | None
    lines: tuple[PrintableLine, ...]
    credits: tuple[PrintableLine, ...]
    """Credits for earlier periods (negative late lines)."""
    subtotal: Decimal
    """Every charge line, adjustments included; credits are not."""
    credits_total: Decimal
    total_before_tax: Decimal
    tax: Decimal | None
    amount_due: Decimal
    references: tuple[Reference, ...] = ()
    """On an invoice, the credit notes against it; on a credit note, the invoice it corrects."""
    deducted_on: Reference | None = None
    """On a credit note: the invoice it is deducted on, under "Credits for earlier periods"."""
    plan: str = ""
    logo_data_uri: str | None = None
    """The issuer's logo inlined (the service reads it), so the document stands alone."""
    fingerprint: str = ""
    """What the invoice was computed from (plan and inputs digests), for checking it."""

    def __post_init__(self) -> None:
        lines = sum((line.amount for line in self.lines), ZERO)
        credits = sum((line.amount for line in self.credits), ZERO)
        assert lines == self.subtotal and credits == self.credits_total
        assert self.total_before_tax == self.subtotal + self.credits_total
        assert self.amount_due == self.total_before_tax + (self.tax or ZERO)

    @property
    def draft(self) -> bool:
        return self.status == "draft"

    @property
    def title(self) -> str:
        return "Credit note" if self.kind == "credit_note" else "Invoice"


# -- words for charges -------------------------------------------------------------------


def describe(charge: Charge) -> str:
    """A charge's line in words: its plan's `description`, else one made from its type."""
    if charge.description:
        return charge.description
    if charge.type == "subscription":
        return "Seats" if charge.per_seat else "Platform subscription"
    if charge.type == "tokens":
        if charge.markup is not None:
            return "Model usage at provider cost"
        if len(charge.classes) == 1:
            return TOKEN_WORDS[charge.classes[0]]
        return (
            "Tokens"
            if set(charge.classes) == set(TOKEN_CLASSES)
            else "Tokens ({})".format(", ".join(TOKEN_WORDS[c].lower() for c in charge.classes))
        )
    if charge.type == "task":
        done = "Completed tasks" if charge.count == "completed" else "Tasks"
        return done if charge.task_type in (None, ANY) else f"{done}: {charge.task_type}"
    contract = charge.policy.contract
    if contract is not None:
        return f"Verified {contract.unit.plural} ({contract.reference})"
    what = charge.outcome if charge.outcome not in (None, ANY) else "all types"
    return f"Verified outcomes ({what})"


def unit_of(charge: Charge, quantity: Decimal | None = None) -> str:
    """What a line's quantity counts; an outcome contract's unit, in the singular for one."""
    contract = charge.policy.contract
    if contract is not None:
        return contract.unit.plural if quantity is None else contract.unit.of(quantity)
    if charge.per_seat:
        return "seat-days"
    if charge.type == "subscription":
        return "month"  # the only plan period; a share of it when the plan changed mid-month
    if charge.type == "tokens":
        return "USD of provider cost" if charge.markup is not None else "tokens"
    return "tasks" if charge.type == "task" else "outcomes"


def unit_price(charge: Charge) -> str:
    """One unit's price in words; "tiered" where tiers decide it."""
    if charge.type == "subscription":
        seat = " per seat" if charge.per_seat else ""
        return f"{plain(charge.amount or ZERO)}{seat} per month"
    if charge.markup is not None:
        return f"cost + {plain((charge.markup * 100).normalize())} %"
    spec = charge.price
    if spec is None:
        return ""
    per = "" if spec.per == 1 else f" per {spec.per:,}"
    free = "" if spec.free_units == 0 else f" after {spec.free_units:,} free"
    if spec.model == "per_unit":
        return f"{plain(spec.unit_price or ZERO)}{per}{free}"
    if spec.model == "package":
        size = (spec.package_size or ZERO) * spec.per
        return f"{plain(spec.package_price or ZERO)} per {size:,}{free}"
    if spec.model == "percentage":
        return f"{plain(((spec.rate or ZERO) * 100).normalize())} % of value{free}"
    return f"tiered ({spec.model}){per}{free}"


def tier_note(charge: Charge, quantity: Decimal) -> str:
    """How tiers came to the amount: each graduated tier's units at its price, or the one
    volume tier the whole quantity fell in and its rate."""
    spec = charge.price
    if spec is None or quantity <= 0:
        return ""
    if spec.model == "volume":
        return _volume_note(spec, quantity)
    if spec.model != "graduated":
        return ""
    billable, lower, parts = spec.billable(quantity), ZERO, []
    for tier in spec.tiers:
        upper = billable if tier.up_to is None else min(billable, tier.up_to)
        if upper > lower:
            parts.append(f"{plain(upper - lower)} at {plain(tier.unit_price)}")
        if tier.up_to is None or billable <= tier.up_to:
            break
        lower = tier.up_to
    return "; ".join(parts)


def seats_note(fee: Fee) -> str:
    """ "8 seats x 10 days; 12 seats x 20 days": the days a per-seat line billed at each
    count, in order."""
    if fee.seats is None:
        return ""
    return "; ".join(
        f"{seats:,} {'seat' if seats == 1 else 'seats'} x {days} {'day' if days == 1 else 'days'}"
        for seats, days in fee.seats
    )


def _volume_note(spec: PriceSpec, quantity: Decimal) -> str:
    """ "all 2,000 at 0.10 (tier above 1,000)": volume prices the whole quantity at the rate
    of the tier it falls in (the same walk as `pricing.volume.price`)."""
    billable, lower = spec.billable(quantity), None
    for tier in spec.tiers:
        if tier.up_to is None or billable <= tier.up_to:
            flat = f" + {plain(tier.flat)} flat" if tier.flat else ""
            if tier.up_to is None:
                bounds = "the only tier" if lower is None else f"tier above {lower:,}"
            else:
                bounds = f"tier up to {tier.up_to:,}"
            return f"all {billable:,f} at {plain(tier.unit_price)}{flat} ({bounds})"
        lower = tier.up_to
    raise AssertionError("validated tiers end with an open tier")


# -- building documents ------------------------------------------------------------------


def charges_by_line(invoice: Invoice, plans: Mapping[str, Plan]) -> list[Charge | None]:
    """The charge of each of the invoice's lines: own lines walk the windows' plans in
    order (one line per charge); late lines take the charge of that name in the latest
    plan that has one. None for an adjustment line."""
    windows = [w.plan for w in invoice.windows] or [invoice.plan]
    own: list[Charge | None] = [c for w in windows for c in plans[w].charges]
    if [c.name if c else None for c in own] != [fee.charge for fee in invoice.fees]:
        raise DocumentError(f"invoice {invoice.id}: its lines are not its plans' charges")
    latest = {c.name: c for w in windows for c in plans[w].charges}
    return own + [latest.get(fee.charge) for fee in invoice.late]


def printed_line(
    fee: Fee,
    charge: Charge | None,
    period_quantity: Decimal | None = None,
    credit_note: Reference | None = None,
) -> PrintableLine:
    """A fee as a line. A late line's quantity is what moved since its period was billed,
    so its tier note uses `period_quantity`, the period's whole quantity now (none without
    it); a credit names the credit note that documents it."""
    late = f"late usage of {fee.period}" if fee.late else ""
    documented = f"see credit note {credit_note.name}" if credit_note is not None else ""
    if charge is None:
        words = ADJUSTMENT_WORDS.get(fee.charge, fee.charge)
        note = "; ".join(part for part in (late, documented) if part)
        return PrintableLine(words, fee.quantity, "", "", fee.amount, note)
    if not fee.late:
        tiers = tier_note(charge, fee.quantity)
    elif period_quantity is not None and tier_note(charge, period_quantity):
        tiers = f"the period now: {tier_note(charge, period_quantity)}"
    else:
        tiers = ""
    note = "; ".join(part for part in (late, tiers, seats_note(fee), documented) if part)
    return PrintableLine(
        describe(charge),
        fee.quantity,
        unit_of(charge, fee.quantity),
        unit_price(charge),
        fee.amount,
        note,
    )


def tax_on(amount: Decimal, issuer: Issuer, currency: str, rounding: str) -> Decimal | None:
    """The issuer's tax on an amount, rounded once to the currency's minor unit."""
    if issuer.tax_rate is None:
        return None
    return round_money(amount * issuer.tax_rate, currency, rounding)


def amount_due(
    total: Decimal, issuer: Issuer, currency: str, rounding: str
) -> tuple[Decimal | None, Decimal]:
    """The tax on a document's total (None: no tax line) and the amount due, total + tax:
    the one tax rule, for printed documents and shown JSON alike."""
    tax = tax_on(total, issuer, currency, rounding)
    return tax, total + (tax or ZERO)


def month_bounds(period: str) -> tuple[dt.date, dt.date]:
    """A "YYYY-MM" period's first and last day."""
    first = dt.date.fromisoformat(f"{period}-01")
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - dt.timedelta(days=1)


def due_date(issued_on: dt.date | None, issuer: Issuer) -> dt.date | None:
    return None if issued_on is None else issued_on + dt.timedelta(days=issuer.payment_terms_days)


def printable_invoice(
    invoice: Invoice,
    plans: Mapping[str, Plan],
    issuer: Issuer,
    customer: Party,
    *,
    number: str | None,
    issued_on: dt.date | None,
    credit_notes: Sequence[Reference] = (),
    applied_notes: Mapping[str, Reference] | None = None,
    period_quantities: Mapping[tuple[str, str], Decimal] | None = None,
) -> PrintableInvoice:
    """An invoice for a person. `plans` holds each of its windows' plans by "ID@VERSION";
    `credit_notes` are the notes against it; `applied_notes` the notes deducted on it, by
    the earlier period they credit; `period_quantities` each late line's period quantity
    now, by (period, charge)."""
    charges = charges_by_line(invoice, plans)
    applied_notes, period_quantities = applied_notes or {}, period_quantities or {}
    lines: list[PrintableLine] = []
    credits: list[PrintableLine] = []
    for fee, charge in zip(invoice.lines, charges, strict=True):
        credit = fee.late and fee.amount < 0
        line = printed_line(
            fee,
            charge,
            period_quantities.get((fee.period, fee.charge)),
            applied_notes.get(fee.period) if credit else None,
        )
        (credits if credit else lines).append(line)
    for name, amount in (
        (TRUE_UP_LINE, invoice.totals.minimum_true_up),
        (DISCOUNT_LINE, -invoice.totals.maximum_discount),
    ):
        if amount != 0:
            lines.append(PrintableLine(ADJUSTMENT_WORDS[name], Decimal(1), "", "", amount))
    rounding = plans[invoice.plan].rounding
    tax, due = amount_due(invoice.totals.total, issuer, invoice.currency, rounding)
    start, end = month_bounds(invoice.period)
    subtotal = sum((line.amount for line in lines), ZERO)
    credited = sum((line.amount for line in credits), ZERO)
    assert subtotal + credited == invoice.totals.total
    return PrintableInvoice(
        kind="invoice",
        id=invoice.id,
        number=number,
        status=invoice.status,
        issuer=issuer,
        customer=customer,
        currency=invoice.currency,
        period=invoice.period,
        period_start=start,
        period_end=end,
        issued_on=issued_on,
        due_on=due_date(issued_on, issuer),
        lines=tuple(lines),
        credits=tuple(credits),
        subtotal=subtotal,
        credits_total=credited,
        total_before_tax=invoice.totals.total,
        tax=tax,
        amount_due=due,
        references=tuple(credit_notes),
        plan=invoice.plan,
        fingerprint=_fingerprint(invoice),
    )


def _fingerprint(invoice: Invoice) -> str:
    """The digests a person can check the invoice by: of its plan, of the usage totals it
    rated and, once finalized, of the records it was computed from (docs/verify.md)."""
    text = f"plan {invoice.plan_digest}; inputs {invoice.inputs_digest}"
    seal = invoice.seal
    if seal is not None and seal.records_digest is not None:
        text += f"; records {seal.records_digest}"
    return text


def printable_credit_note(
    note: CreditNote,
    corrects: Reference,
    plans: Mapping[str, Plan],
    rounding: str,
    issuer: Issuer,
    customer: Party,
    *,
    number: str | None,
    issued_on: dt.date,
    deducted_on: Reference | None = None,
    period_quantities: Mapping[tuple[str, str], Decimal] | None = None,
) -> PrintableInvoice:
    """A credit note for a person: the invoice it corrects, the invoice it is deducted on,
    its lines and the amount credited (negative), tax included at the issuer's rate."""
    latest = {c.name: c for plan in plans.values() for c in plan.charges}
    period_quantities = period_quantities or {}
    lines = tuple(
        printed_line(fee, latest.get(fee.charge), period_quantities.get((fee.period, fee.charge)))
        for fee in note.lines
    )
    tax, credited = amount_due(note.total, issuer, note.currency, rounding)
    start, end = month_bounds(note.period)
    return PrintableInvoice(
        kind="credit_note",
        id=note.id,
        number=number,
        status="issued",
        issuer=issuer,
        customer=customer,
        currency=note.currency,
        period=note.period,
        period_start=start,
        period_end=end,
        issued_on=issued_on,
        due_on=None,
        lines=lines,
        credits=(),
        subtotal=note.total,
        credits_total=ZERO,
        total_before_tax=note.total,
        tax=tax,
        amount_due=credited,
        references=(corrects,),
        deducted_on=deducted_on,
    )
