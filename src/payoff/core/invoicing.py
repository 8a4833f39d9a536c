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
from payoff.core.plan import Plan
from payoff.core.rating import Fee

ZERO = Decimal(0)

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


def totals(plan: Plan, fees: Sequence[Fee]) -> Totals:
    """Subtotal of rounded fees, then the plan's minimum (true-up) and maximum (discount)."""

    def rounded(amount: Decimal) -> Decimal:
        return round_money(amount, plan.currency, plan.rounding)

    subtotal = rounded(sum((fee.amount for fee in fees), ZERO))
    true_up = rounded(ZERO)
    if plan.minimum is not None and subtotal < plan.minimum:
        true_up = rounded(plan.minimum - subtotal)
    discount = rounded(ZERO)
    if plan.maximum is not None and subtotal + true_up > plan.maximum:
        discount = rounded(subtotal + true_up - plan.maximum)
    result = Totals(subtotal, true_up, discount, subtotal + true_up - discount)
    assert result.total >= 0 and (plan.maximum is None or result.total <= plan.maximum)
    return result


def fee_json(fee: Fee) -> dict[str, Any]:
    line: dict[str, Any] = {
        "charge": fee.charge,
        "units": str(fee.units),
        "amount": str(fee.amount),
        "precise_amount": str(fee.precise_amount),
    }
    if fee.late:
        line["late_period"] = fee.period
    if fee.absorbed_tokens is not None:
        line["absorbed_hidden_tokens"] = fee.absorbed_tokens
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
) -> dict[str, Any]:
    """The invoice as a JSON-ready dict, amounts as decimal strings."""
    result = totals(plan, fees)
    return {
        "id": invoice_id,
        "customer": customer,
        "period": period,
        "status": status,
        "currency": plan.currency,
        "plan": f"{plan.id}@{plan.version}",
        "as_of": as_of,
        "fees": [fee_json(fee) for fee in fees],
        "subtotal": str(result.subtotal),
        "minimum_true_up": str(result.minimum_true_up),
        "maximum_discount": str(result.maximum_discount),
        "total": str(result.total),
        "plan_digest": plan_digest,
        "inputs_digest": inputs_digest,
    }
