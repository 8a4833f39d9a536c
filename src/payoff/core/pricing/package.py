"""package: whole packages of `package_size` units; a started package is a whole one."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

from payoff.core.pricing.spec import PriceSpec, check_common, check_non_negative, check_required


def price(spec: PriceSpec, quantity: Decimal) -> Decimal:
    assert spec.package_size is not None and spec.package_price is not None
    packages = (spec.billable(quantity) / spec.package_size).to_integral_value(ROUND_CEILING)
    return packages * spec.package_price


def validate(spec: PriceSpec) -> list[str]:
    errors = check_common(spec) + check_required(spec, "package_size", "package_price")
    errors += check_non_negative(spec, "package_price")
    if spec.package_size is not None and spec.package_size <= 0:
        errors.append(f"package_size: must be positive, got {spec.package_size}")
    return errors
