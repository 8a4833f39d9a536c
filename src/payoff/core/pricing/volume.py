"""volume: the whole quantity at the price of the tier it falls in, plus that tier's flat."""

from __future__ import annotations

from decimal import Decimal

from payoff.core.pricing.spec import PriceSpec, check_common
from payoff.core.pricing.tiers import validate_tiers


def price(spec: PriceSpec, quantity: Decimal) -> Decimal:
    billable = spec.billable(quantity)
    for tier in spec.tiers:
        if tier.up_to is None or billable <= tier.up_to:
            return tier.flat + billable * tier.unit_price
    raise AssertionError("validated tiers end with an open tier")


def validate(spec: PriceSpec) -> list[str]:
    return check_common(spec) + validate_tiers(spec)
