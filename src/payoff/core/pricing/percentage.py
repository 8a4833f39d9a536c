"""percentage: a share of each outcome's value, plus a fixed fee, clamped per event.

`free_units` here is a number of events: the first ones (in time order) are free.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from payoff.core.money import ZERO
from payoff.core.pricing.spec import (
    PriceSpec,
    check_common,
    check_non_negative,
    check_required,
)


def fee_for(spec: PriceSpec, value: Decimal) -> Decimal:
    assert spec.rate is not None
    fee = value * spec.rate + spec.fixed_fee
    if spec.min_per_event is not None:
        fee = max(fee, spec.min_per_event)
    if spec.max_per_event is not None:
        fee = min(fee, spec.max_per_event)
    return fee


def price(spec: PriceSpec, values: Sequence[Decimal]) -> Decimal:
    free = int(spec.free_units)
    return sum((fee_for(spec, value) for value in values[free:]), ZERO)


def validate(spec: PriceSpec) -> list[str]:
    errors = check_common(spec) + check_required(spec, "rate")
    errors += check_non_negative(spec, "rate", "fixed_fee", "min_per_event", "max_per_event")
    if spec.free_units != spec.free_units.to_integral_value():
        errors.append(f"free_units: a whole number of events, got {spec.free_units}")
    low, high = spec.min_per_event, spec.max_per_event
    if low is not None and high is not None and low > high:
        errors.append(f"min_per_event: {low} exceeds max_per_event {high}")
    return errors
