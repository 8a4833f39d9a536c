"""Exact money: the one place that defines how costs are represented.

Provider costs are integers of nano-USD (1 USD = 10**9 nano-USD). At that scale a single
token at the cheapest catalog price (a few cents per million tokens) is still tens of units,
and a signed 64-bit column holds one step's cost (below MAX_STEP_COST_NANOUSD) with room to
spare. Sums of many steps can pass 2**63: the store sums them exactly (`store.exact_sums`).
Converting a precise `Decimal` cost to this scale rounds half-even, once, per event.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from payoff.core.errors import AmountError

NANOUSD_PER_USD = 10**9
ZERO = Decimal(0)
MAX_STEP_COST_NANOUSD = 10**18 - 1
"""One step's cost at most (999,999,999.999999999 USD): the bound of a record's `cost`, and of
a cost the catalog computes, so that every cost fits a 64-bit column (below 2**60)."""


def round_usd_to_nanousd(amount_usd: Decimal) -> int:
    """Round a precise USD amount to whole nano-USD, half-even."""
    return int(amount_usd.scaleb(9).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def parse_usd_exact_nanousd(text: str) -> int:
    """Parse a decimal string of USD into nano-USD, refusing anything that would round.

    Raises AmountError (a ValueError) with a sentence fit for an error message.
    """
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise AmountError(f"{text!r} is not a decimal number") from None
    if not amount.is_finite():
        raise AmountError(f"{text!r} is not a finite decimal number")
    if amount < 0:
        raise AmountError(f"{text!r} is negative")
    scaled = amount.scaleb(9)
    if scaled != scaled.to_integral_value():
        raise AmountError(f"{text!r} has more than 9 decimal places (the cost scale is nano-USD)")
    return int(scaled)


def format_nanousd(amount_nanousd: int) -> str:
    """Nano-USD as a decimal string of USD with all nine places, e.g. '0.000123400'."""
    return f"{Decimal(amount_nanousd).scaleb(-9):.9f}"


def round_div_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest integer, ties to even (denominator > 0)."""
    assert denominator > 0
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient
