"""Charge models: how a quantity (or a list of values) becomes a precise amount.

One model, one small module, each with a pure `price()` and its `validate()`, registered in
`MODELS`. Every model first takes `free_units` off the quantity, then divides by `per`
(a price per million tokens has per = 1,000,000); tiers and prices apply to that quantity.
Amounts are precise `Decimal`s: rounding happens once, when a fee is made (invoicing).

Tiers, the same for graduated and volume: `up_to` is an inclusive upper bound and None marks
the last tier; a quantity between two bounds falls in the higher tier. A tier's `flat` fee
is due once the quantity reaches the tier; the first tier always counts as reached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import NamedTuple

from payoff.core.pricing import graduated, package, per_unit, percentage, volume
from payoff.core.pricing.spec import PriceSpec, Tier


class ChargeModel(NamedTuple):
    price: Callable[[PriceSpec, Decimal], Decimal]
    validate: Callable[[PriceSpec], list[str]]


MODELS: dict[str, ChargeModel] = {
    "graduated": ChargeModel(graduated.price, graduated.validate),
    "package": ChargeModel(package.price, package.validate),
    "per_unit": ChargeModel(per_unit.price, per_unit.validate),
    "volume": ChargeModel(volume.price, volume.validate),
}
"""Models priced from one quantity. `percentage` prices a list of values instead."""


def price(spec: PriceSpec, quantity: Decimal) -> Decimal:
    return MODELS[spec.model].price(spec, quantity)


def price_values(spec: PriceSpec, values: Sequence[Decimal]) -> Decimal:
    assert spec.model == "percentage"
    return percentage.price(spec, values)


def validate(spec: PriceSpec) -> list[str]:
    if spec.model == "percentage":
        return percentage.validate(spec)
    if spec.model not in MODELS:
        known = ", ".join(sorted([*MODELS, "percentage"]))
        return [f"model: unknown charge model {spec.model!r}; expected one of {known}"]
    return MODELS[spec.model].validate(spec)


__all__ = ["MODELS", "ChargeModel", "PriceSpec", "Tier", "price", "price_values", "validate"]
