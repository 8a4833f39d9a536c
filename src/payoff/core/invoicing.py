"""Invoices: fees assembled into a document, the minimum and maximum applied, and the
invoice lifecycle as a transition table.

    total = sum of rounded fees + minimum true-up - maximum discount

The document is canonical JSON: the same fees, plan and inputs give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from payoff.core.currency import round_money
from payoff.core.money import ZERO
from payoff.core.plan import Plan
from payoff.core.rating import DISCOUNT_LINE, TRUE_UP_LINE, Fee

# (status, action) -> new status. Anything else is refused.
TRANSITIONS = {
    ("draft", "finalize"): "finalized",
    ("finalized", "pay"): "paid",
    ("finalized", "void"): "void",
}


class TransitionError(ValueError):
    """An invoice action its status does not allow."""


def transition(status: str, action: str) -> str:
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


def fee_json(fee: Fee) -> dict[str, Any]:
    line: dict[str, Any] = {
        "charge": fee.charge,
        "units": plain(fee.units),
        "amount": plain(fee.amount),
        "precise_amount": plain(fee.precise_amount),
    }
    if fee.late:
        line["late_period"] = fee.period
    if fee.absorbed_tokens is not None:
        line["absorbed_hidden_tokens"] = fee.absorbed_tokens
    if fee.unpriced_steps is not None:
        line["unpriced_steps"] = fee.unpriced_steps
    return line


def digest(value: Any) -> str:
    """sha256 of a value's canonical JSON: what an invoice records of its inputs."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def document(
    *,
    invoice_id: str,
    customer: str,
    period: str,
    status: str,
    plan: Plan,
    fees: Sequence[Fee],
    as_of: str,
    plan_digest: str,
    inputs_digest: str,
    late: Sequence[Fee] = (),
    windows: Sequence[dict[str, Any]] = (),
    basis: Sequence[str] = (),
) -> dict[str, Any]:
    """The invoice as a JSON-ready dict, amounts as decimal strings.

    `fees` are the period's own lines; `late` the lines for earlier periods; `windows` the
    subscription windows rated (plan, its digest, days); `basis` the finalized invoices the
    late lines were computed against (finalizing is refused once they change).
    """
    result = totals(plan, fees, late)
    body: dict[str, Any] = {
        "id": invoice_id,
        "customer": customer,
        "period": period,
        "status": status,
        "currency": plan.currency,
        "plan": f"{plan.id}@{plan.version}",
        "as_of": as_of,
        "fees": [fee_json(fee) for fee in [*fees, *late]],
        "subtotal": plain(result.subtotal),
        "minimum_true_up": plain(result.minimum_true_up),
        "maximum_discount": plain(result.maximum_discount),
        "total": plain(result.total),
        "plan_digest": plan_digest,
        "inputs_digest": inputs_digest,
    }
    if windows:
        body["windows"] = list(windows)
    body["basis"] = list(basis)
    return body
