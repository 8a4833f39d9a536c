"""What every charge model reads: the price spec, tiers, shared checks."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from payoff.core.money import ZERO


@dataclass(frozen=True)
class Tier:
    up_to: Decimal | None
    unit_price: Decimal
    flat: Decimal = ZERO


@dataclass(frozen=True)
class PriceSpec:
    """The pricing part of a charge; which fields matter depends on `model`."""

    model: str
    unit_price: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    package_size: Decimal | None = None
    package_price: Decimal | None = None
    rate: Decimal | None = None
    fixed_fee: Decimal = ZERO
    min_per_event: Decimal | None = None
    max_per_event: Decimal | None = None
    free_units: Decimal = ZERO
    per: Decimal = Decimal(1)

    def billable(self, quantity: Decimal) -> Decimal:
        """The quantity a model prices: free units off, then divided by `per`."""
        return max(ZERO, quantity - self.free_units) / self.per


def check_non_negative(spec: PriceSpec, *names: str) -> list[str]:
    errors = []
    for name in names:
        value = getattr(spec, name)
        if value is not None and (not value.is_finite() or value < 0):
            errors.append(f"{name}: must be a finite, non-negative number, got {value}")
    return errors


def check_required(spec: PriceSpec, *names: str) -> list[str]:
    return [
        f"{name}: required by model {spec.model}" for name in names if getattr(spec, name) is None
    ]


def check_common(spec: PriceSpec) -> list[str]:
    errors = check_non_negative(spec, "free_units", "fixed_fee")
    if not spec.per.is_finite() or spec.per <= 0:
        errors.append(f"per: must be positive, got {spec.per}")
    return errors
