"""What one verified outcome earns: the price the budget advice weighs cost against.

A price comes from somewhere a provider and its customer agreed on: a fixed amount per
verified outcome (`per_outcome`: given on the command line, or a contract's price), or the
outcome charge of the customer's plan (`from_charge`). Either way it is one value that says
what a single verified outcome of a given value earns, exactly, in the plan's currency.

A charge whose price for one outcome depends on how many there are (tiers, packages) has no
such value and is refused, as is a charge in a currency other than USD (costs are in USD).
Free units are not taken off: they lower the first outcomes' price once a period, not the
price of an outcome at the margin, which is what a budget trades cost against.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from payoff.core.errors import Refused
from payoff.core.plan import Charge
from payoff.core.pricing import percentage
from payoff.core.pricing.spec import PriceSpec

PER_OUTCOME_MODELS = ("per_unit", "percentage")
"""Charge models that price one outcome on its own: what budget advice can weigh."""


class PriceError(Refused):
    """An outcome price that budget advice cannot use; the message says why."""


@dataclass(frozen=True)
class OutcomePrice:
    """The price of one verified outcome: fixed, or a percentage charge of its value."""

    source: str
    """Where the price comes from, for people: `--price`, `plan P@V, charge C`."""
    fixed_usd: Decimal | None = None
    spec: PriceSpec | None = None
    """A percentage charge: its rate of the outcome's value, fixed fee and clamps."""

    def of(self, value: Decimal | None) -> Decimal:
        """What a verified outcome of this value earns (a claim without a value is worth 0)."""
        if self.fixed_usd is not None:
            return self.fixed_usd
        assert self.spec is not None
        return percentage.fee_for(self.spec, Decimal(0) if value is None else value)

    def as_json(self) -> dict[str, str | None]:
        spec = self.spec
        return {
            "source": self.source,
            "price_usd": None if self.fixed_usd is None else format(self.fixed_usd, "f"),
            "rate": None if spec is None or spec.rate is None else format(spec.rate, "f"),
        }


def per_outcome(price_usd: Decimal, source: str) -> OutcomePrice:
    """A fixed price per verified outcome (the command line's `--price`, a contract's)."""
    if not price_usd.is_finite() or price_usd < 0:
        raise PriceError(f"{source}: a price is a non-negative amount, got {price_usd}")
    return OutcomePrice(source, fixed_usd=price_usd)


def from_charge(charge: Charge, plan: str, currency: str) -> OutcomePrice:
    """The price one verified outcome earns under an outcome charge of plan `plan`."""
    source = f"plan {plan}, charge {charge.name}"
    spec = charge.price
    assert charge.type == "outcome" and spec is not None
    if currency != "USD":
        raise PriceError(f"{source}: currency {currency}; provider cost is in USD")
    if spec.model not in PER_OUTCOME_MODELS:
        raise PriceError(
            f"{source}: a {spec.model} charge prices outcomes by how many there are, not one by "
            "one; give the price of one outcome (--price)"
        )
    if spec.model == "percentage":
        return OutcomePrice(source, spec=spec)
    assert spec.unit_price is not None
    return OutcomePrice(source, fixed_usd=spec.unit_price / spec.per)
