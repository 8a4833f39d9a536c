"""graduated: each slice of the quantity at its own tier's price, in one walk of the tiers."""

from __future__ import annotations

from decimal import Decimal

from payoff.core.money import ZERO
from payoff.core.pricing.spec import PriceSpec, check_common
from payoff.core.pricing.tiers import validate_tiers


def price(spec: PriceSpec, quantity: Decimal) -> Decimal:
    billable = spec.billable(quantity)
    total, lower = ZERO, ZERO
    for index, tier in enumerate(spec.tiers):
        if index > 0 and billable <= lower:
            break  # this tier is not reached
        upper = billable if tier.up_to is None else min(billable, tier.up_to)
        total += tier.flat + (upper - lower) * tier.unit_price
        if tier.up_to is None or billable <= tier.up_to:
            break
        lower = tier.up_to
    return total


def validate(spec: PriceSpec) -> list[str]:
    return check_common(spec) + validate_tiers(spec)
