"""Invoices: fees assembled into a typed `Invoice`, the minimum and maximum applied, and
the invoice lifecycle as a transition table.

    total = subtotal + minimum true-up - maximum discount;  subtotal = sum of rounded lines

An `Invoice` holds both identities (checked when it is made and when it is read back), and
has one JSON codec: `to_json()` is canonical JSON, so the same fees, plan and inputs give the
same bytes, and `from_json()` reads those bytes back to the same value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from payoff.core.allowances import WindowUse
from payoff.core.canonical import (
    DocumentError,
    canonical_json,
    check_keys,
    decimal_field,
    optional_int_field,
    text_field,
    typed_field,
)
from payoff.core.chain import Seal
from payoff.core.currency import round_money
from payoff.core.errors import Refused
from payoff.core.money import ZERO
from payoff.core.plan import Plan
from payoff.core.rating import DISCOUNT_LINE, TRUE_UP_LINE, Fee
from payoff.core.statuses import InvoiceStatus, is_invoice_status

# (status, action) -> new status. Anything else is refused.
TRANSITIONS: dict[tuple[InvoiceStatus, str], InvoiceStatus] = {
    ("draft", "finalize"): "finalized",
    ("finalized", "pay"): "paid",
    ("finalized", "void"): "void",
}
INVOICE_ACTIONS = tuple(dict.fromkeys(action for _, action in TRANSITIONS))
"""Every action some status allows, in the table's order."""


class TransitionError(Refused, ValueError):
    """An invoice action its status does not allow."""


def transition(status: InvoiceStatus, action: str) -> InvoiceStatus:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        allowed = sorted(a for (s, a) in TRANSITIONS if s == status) or ["none"]
        raise TransitionError(
            f"cannot {action} an invoice that is {status} (allowed: {', '.join(allowed)})"
        ) from None


@dataclass(frozen=True)
class Totals:
    subtotal: Decimal
    minimum_true_up: Decimal
    maximum_discount: Decimal
    total: Decimal


def totals(plan: Plan, fees: Sequence[Fee], late: Sequence[Fee] = ()) -> Totals:
    """The period's own fees against the plan's minimum (true-up) and maximum (discount),
    then late lines for earlier periods, which carry their own periods' minimums and caps.

    total = subtotal (every rounded line) + true-up - discount; it may be negative when
    late lines credit more than the period costs.
    """

    def rounded(amount: Decimal) -> Decimal:
        return round_money(amount, plan.currency, plan.rounding)

    own = rounded(sum((fee.amount for fee in fees), ZERO))
    assert own >= 0, "a period's own fees are never negative"
    true_up = rounded(ZERO)
    if plan.minimum is not None and own < plan.minimum:
        true_up = rounded(plan.minimum - own)
    discount = rounded(ZERO)
    if plan.maximum is not None and own + true_up > plan.maximum:
        discount = rounded(own + true_up - plan.maximum)
    assert plan.maximum is None or own + true_up - discount <= plan.maximum
    subtotal = own + rounded(sum((fee.amount for fee in late), ZERO))
    return Totals(subtotal, true_up, discount, subtotal + true_up - discount)


def adjustment_lines(plan: Plan, fees: Sequence[Fee], period: str) -> list[Fee]:
    """A period's true-up and discount as lines, for comparing what it comes to over time."""
    result = totals(plan, fees)
    return [
        Fee(TRUE_UP_LINE, Decimal(0), result.minimum_true_up, result.minimum_true_up, period),
        Fee(DISCOUNT_LINE, Decimal(0), -result.maximum_discount, -result.maximum_discount, period),
    ]


def plain(value: Decimal) -> str:
    """A decimal as plain text, never in exponent notation ("1000", not "1E+3")."""
    return format(value, "f")


# -- the JSON codec: fields, lines, windows ---------------------------------------------


LINE_KEYS = {"charge", "units", "amount", "precise_amount"}
LINE_OPTIONAL = {
    "late_period",
    "absorbed_hidden_tokens",
    "unpriced_steps",
    "seats",
    "usage_windows",
}


def line_json(fee: Fee) -> dict[str, Any]:
    """A fee as an invoice line (the quantity under its historical key, "units")."""
    line: dict[str, Any] = {
        "charge": fee.charge,
        "units": plain(fee.quantity),
        "amount": plain(fee.amount),
        "precise_amount": plain(fee.precise_amount),
    }
    if fee.late:
        line["late_period"] = fee.period
    if fee.absorbed_tokens is not None:
        line["absorbed_hidden_tokens"] = fee.absorbed_tokens
    if fee.unpriced_steps is not None:
        line["unpriced_steps"] = fee.unpriced_steps
    if fee.seats is not None:
        line["seats"] = [{"seats": seats, "days": days} for seats, days in fee.seats]
    if fee.windows is not None:
        line["usage_windows"] = [
            {
                "every_hours": w.every_hours,
                "start_hour": w.start_hour,
                "used": w.used,
                "included": w.included,
            }
            for w in fee.windows
        ]
    return line


WINDOW_USE_KEYS = {"every_hours", "start_hour", "used", "included"}


def _windows_field(line: Mapping[str, Any]) -> tuple[WindowUse, ...] | None:
    """A limited line's window use, or None on any other line."""
    if "usage_windows" not in line:
        return None
    found = []
    for value in typed_field(line, "usage_windows", list):
        check_keys(value, WINDOW_USE_KEYS, set(), "usage window of an invoice line")
        assert isinstance(value, Mapping)
        found.append(WindowUse(*(typed_field(value, key, int) for key in WINDOW_USE_FIELDS)))
    return tuple(found)


WINDOW_USE_FIELDS = ("every_hours", "start_hour", "used", "included")


def _seats_field(line: Mapping[str, Any]) -> tuple[tuple[int, int], ...] | None:
    """A per-seat line's (seats, days), or None on any other line."""
    if "seats" not in line:
        return None
    found = []
    for segment in typed_field(line, "seats", list):
        check_keys(segment, {"seats", "days"}, set(), "seats of an invoice line")
        assert isinstance(segment, Mapping)
        seats: int = typed_field(segment, "seats", int)
        days: int = typed_field(segment, "days", int)
        found.append((seats, days))
    return tuple(found)


def line_from_json(line: object, period: str) -> Fee:
    """An invoice line back as a fee; `period` is the invoice's, for lines that are not late."""
    check_keys(line, LINE_KEYS, LINE_OPTIONAL, "invoice line")
    assert isinstance(line, Mapping)
    late = "late_period" in line
    return Fee(
        charge=text_field(line, "charge"),
        quantity=decimal_field(line, "units"),
        precise_amount=decimal_field(line, "precise_amount"),
        amount=decimal_field(line, "amount"),
        period=text_field(line, "late_period") if late else period,
        late=late,
        absorbed_tokens=optional_int_field(line, "absorbed_hidden_tokens"),
        unpriced_steps=optional_int_field(line, "unpriced_steps"),
        seats=_seats_field(line),
        windows=_windows_field(line),
    )


@dataclass(frozen=True)
class Window:
    """One subscription window an invoice rated: the plan version, its digest, and the days
    of the period it covers (from 1, both ends included)."""

    plan: str
    """The plan as "ID@VERSION"."""
    plan_digest: str
    first_day: int
    last_day: int

    def to_json_value(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "plan_digest": self.plan_digest,
            "first_day": self.first_day,
            "last_day": self.last_day,
        }

    @classmethod
    def from_json_value(cls, value: object) -> Window:
        check_keys(value, {"plan", "plan_digest", "first_day", "last_day"}, set(), "invoice window")
        assert isinstance(value, Mapping)
        first_day: int = typed_field(value, "first_day", int)
        last_day: int = typed_field(value, "last_day", int)
        return cls(text_field(value, "plan"), text_field(value, "plan_digest"), first_day, last_day)


@dataclass(frozen=True)
class Rerated:
    """An earlier finalized period that an invoice run rated again for late lines: the
    subscription windows it rated, and the finalized invoices whose lines for that period
    the late lines were computed against (what they billed is subtracted)."""

    period: str
    windows: tuple[Window, ...]
    billed: tuple[str, ...]

    def to_json_value(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "windows": [window.to_json_value() for window in self.windows],
            "billed": list(self.billed),
        }

    @classmethod
    def from_json_value(cls, value: object) -> Rerated:
        check_keys(value, {"period", "windows", "billed"}, set(), "rerated period")
        assert isinstance(value, Mapping)
        windows = typed_field(value, "windows", list)
        billed = typed_field(value, "billed", list)
        if not all(isinstance(invoice, str) for invoice in billed):
            raise DocumentError(f"billed: expected a list of strings, got {billed!r}")
        return cls(
            text_field(value, "period"),
            tuple(Window.from_json_value(window) for window in windows),
            tuple(billed),
        )


# -- the invoice -------------------------------------------------------------------------


@dataclass(frozen=True)
class Invoice:
    """One customer's invoice for one period.

    `fees` are the period's own lines, one per charge of each window's plan in window
    order; `late` the lines for earlier periods; `windows` the subscription windows rated;
    `basis` the finalized invoices the late lines were computed against (finalizing is
    refused once they change; None on documents written before it was recorded);
    `rerated` the earlier periods rated again for the late lines, and how (None on
    documents written before it was recorded); `seal` what finalizing
    added (`core.chain`; None on drafts, and on documents finalized before documents were
    sealed).
    """

    id: str
    customer: str
    period: str
    status: InvoiceStatus
    currency: str
    plan: str
    """The period's last plan, as "ID@VERSION": its minimum and maximum apply."""
    as_of: str
    fees: tuple[Fee, ...]
    late: tuple[Fee, ...]
    totals: Totals
    plan_digest: str
    inputs_digest: str
    windows: tuple[Window, ...] = ()
    basis: tuple[str, ...] | None = ()
    rerated: tuple[Rerated, ...] | None = ()
    seal: Seal | None = None

    def __post_init__(self) -> None:
        # The pair assertion: the totals are what the lines add up to.
        lines = sum((fee.amount for fee in self.lines), ZERO)
        t = self.totals
        if t.subtotal != lines:
            raise DocumentError(
                f"invoice {self.id}: subtotal {plain(t.subtotal)} is not the sum of its "
                f"lines, {plain(lines)}"
            )
        if t.total != t.subtotal + t.minimum_true_up - t.maximum_discount:
            raise DocumentError(
                f"invoice {self.id}: total {plain(t.total)} is not subtotal + true-up - discount"
            )
        if any(fee.late for fee in self.fees) or not all(fee.late for fee in self.late):
            raise DocumentError(f"invoice {self.id}: own and late lines are mixed up")

    @property
    def lines(self) -> tuple[Fee, ...]:
        """Every line: the period's own, then the late ones."""
        return (*self.fees, *self.late)

    def with_status(self, status: InvoiceStatus) -> Invoice:
        return replace(self, status=status)

    def sealed(self, seal: Seal) -> Invoice:
        """The invoice as finalized: the draft with its seal."""
        return replace(self, seal=seal)

    def unsealed(self) -> Invoice:
        """The draft that was finalized: the invoice without its seal."""
        return replace(self, seal=None)

    def billed_for(self, period: str) -> list[Fee]:
        """What this invoice billed for a period: its own lines and adjustments (the true-up
        and discount as lines), or its late lines for that period."""
        fees = [fee for fee in self.lines if fee.period == period]
        if self.period == period:
            true_up, discount = self.totals.minimum_true_up, self.totals.maximum_discount
            fees.append(Fee(TRUE_UP_LINE, ZERO, true_up, true_up, period))
            fees.append(Fee(DISCOUNT_LINE, ZERO, -discount, -discount, period))
        return fees

    def to_document(self) -> dict[str, Any]:
        """The invoice as a JSON-ready dict, amounts as decimal strings, with its status."""
        body: dict[str, Any] = {
            "id": self.id,
            "customer": self.customer,
            "period": self.period,
            "status": self.status,
            "currency": self.currency,
            "plan": self.plan,
            "as_of": self.as_of,
            "fees": [line_json(fee) for fee in self.lines],
            "subtotal": plain(self.totals.subtotal),
            "minimum_true_up": plain(self.totals.minimum_true_up),
            "maximum_discount": plain(self.totals.maximum_discount),
            "total": plain(self.totals.total),
            "plan_digest": self.plan_digest,
            "inputs_digest": self.inputs_digest,
        }
        if self.windows:
            body["windows"] = [window.to_json_value() for window in self.windows]
        if self.basis is not None:
            body["basis"] = list(self.basis)
        if self.rerated is not None:
            body["rerated"] = [rerated.to_json_value() for rerated in self.rerated]
        if self.seal is not None:
            body["seal"] = self.seal.to_json_value()
        return body

    def to_json(self) -> str:
        """The invoice as stored: canonical JSON, without its status (which moves)."""
        document = self.to_document()
        del document["status"]
        return canonical_json(document)

    @classmethod
    def from_json(cls, text: str | bytes, status: str) -> Invoice:
        """An invoice back from its stored JSON; raises DocumentError when it does not hold
        together (see `from_document`)."""
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise DocumentError(f"invoice: not JSON: {exc}") from None
        return cls.from_document(document, status)

    @classmethod
    def from_document(cls, document: object, status: str | None = None) -> Invoice:
        """An invoice from its JSON value (`status`, when given, overrides the document's).
        Refuses unknown keys, totals that do not add up, and a plan or plan digest that is
        not the last window's."""
        check_keys(document, INVOICE_KEYS, INVOICE_OPTIONAL, "invoice")
        assert isinstance(document, Mapping)
        period = text_field(document, "period")
        raw_lines = typed_field(document, "fees", list)
        lines = [line_from_json(line, period) for line in raw_lines]
        windows = tuple(Window.from_json_value(w) for w in document.get("windows", ()))
        basis = document.get("basis")
        if basis is not None and not (
            isinstance(basis, list) and all(isinstance(b, str) for b in basis)
        ):
            raise DocumentError(f"basis: expected a list of strings, got {basis!r}")
        invoice = cls(
            id=text_field(document, "id"),
            customer=text_field(document, "customer"),
            period=period,
            status=_status(status if status is not None else text_field(document, "status")),
            currency=text_field(document, "currency"),
            plan=text_field(document, "plan"),
            as_of=text_field(document, "as_of"),
            fees=tuple(fee for fee in lines if not fee.late),
            late=tuple(fee for fee in lines if fee.late),
            totals=Totals(
                subtotal=decimal_field(document, "subtotal"),
                minimum_true_up=decimal_field(document, "minimum_true_up"),
                maximum_discount=decimal_field(document, "maximum_discount"),
                total=decimal_field(document, "total"),
            ),
            plan_digest=text_field(document, "plan_digest"),
            inputs_digest=text_field(document, "inputs_digest"),
            windows=windows,
            basis=None if basis is None else tuple(basis),
            rerated=_rerated(document),
            seal=Seal.from_json_value(document["seal"]) if "seal" in document else None,
        )
        if invoice.lines != tuple(lines):
            raise DocumentError(f"invoice {invoice.id}: late lines come before its own")
        if windows and (windows[-1].plan, windows[-1].plan_digest) != (
            invoice.plan,
            invoice.plan_digest,
        ):
            raise DocumentError(
                f"invoice {invoice.id}: plan {invoice.plan} ({invoice.plan_digest}) is not "
                f"its last window's, {windows[-1].plan} ({windows[-1].plan_digest})"
            )
        return invoice


INVOICE_KEYS = {
    "id",
    "customer",
    "period",
    "currency",
    "plan",
    "as_of",
    "fees",
    "subtotal",
    "minimum_true_up",
    "maximum_discount",
    "total",
    "plan_digest",
    "inputs_digest",
}
INVOICE_OPTIONAL = {"status", "windows", "basis", "rerated", "seal"}


def _rerated(document: Mapping[str, Any]) -> tuple[Rerated, ...] | None:
    if "rerated" not in document:
        return None
    return tuple(Rerated.from_json_value(r) for r in typed_field(document, "rerated", list))


def _status(text: str) -> InvoiceStatus:
    if not is_invoice_status(text):
        raise DocumentError(f"status: not an invoice status: {text!r}")
    return text


def make_invoice(
    *,
    invoice_id: str,
    customer: str,
    period: str,
    status: InvoiceStatus,
    plan: Plan,
    fees: Sequence[Fee],
    as_of: str,
    plan_digest: str,
    inputs_digest: str,
    late: Sequence[Fee] = (),
    windows: Sequence[Window] = (),
    basis: Sequence[str] = (),
    rerated: Sequence[Rerated] = (),
) -> Invoice:
    """An invoice of a period's own `fees` and `late` lines, with the plan's minimum and
    maximum applied (see `totals`)."""
    return Invoice(
        id=invoice_id,
        customer=customer,
        period=period,
        status=status,
        currency=plan.currency,
        plan=f"{plan.id}@{plan.version}",
        as_of=as_of,
        fees=tuple(fees),
        late=tuple(late),
        totals=totals(plan, fees, late),
        plan_digest=plan_digest,
        inputs_digest=inputs_digest,
        windows=tuple(windows),
        basis=tuple(basis),
        rerated=tuple(rerated),
    )
