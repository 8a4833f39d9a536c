"""per_unit: every billable unit at one price."""

from __future__ import annotations

from decimal import Decimal

from payoff.core.pricing.spec import PriceSpec, check_common, check_non_negative, check_required


def price(spec: PriceSpec, quantity: Decimal) -> Decimal:
    assert spec.unit_price is not None
    return spec.billable(quantity) * spec.unit_price


def validate(spec: PriceSpec) -> list[str]:
    return (
        check_common(spec)
        + check_required(spec, "unit_price")
        + check_non_negative(spec, "unit_price")
    )
