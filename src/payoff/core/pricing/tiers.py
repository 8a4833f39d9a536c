"""Checks shared by the tiered models (graduated, volume)."""

from __future__ import annotations

from payoff.core.pricing.spec import PriceSpec


def validate_tiers(spec: PriceSpec) -> list[str]:
    if not spec.tiers:
        return [f"tiers: required by model {spec.model}"]
    errors = []
    previous = None
    for index, tier in enumerate(spec.tiers):
        where = f"tiers[{index}]"
        for name in ("unit_price", "flat"):
            value = getattr(tier, name)
            if not value.is_finite() or value < 0:
                errors.append(f"{where}.{name}: must be a finite, non-negative number")
        last = index == len(spec.tiers) - 1
        if tier.up_to is None and not last:
            errors.append(f"{where}.up_to: only the last tier may be open (null)")
        if tier.up_to is not None and last:
            errors.append(f"{where}.up_to: the last tier must be open (null)")
        if tier.up_to is not None and not tier.up_to.is_finite():
            errors.append(f"{where}.up_to: must be a finite number")
        elif tier.up_to is not None:
            if tier.up_to <= 0:
                errors.append(f"{where}.up_to: must be positive, got {tier.up_to}")
            if previous is not None and tier.up_to <= previous:
                errors.append(f"{where}.up_to: tiers must ascend; {tier.up_to} follows {previous}")
            previous = tier.up_to
    return errors
