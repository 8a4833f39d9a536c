"""Currencies and the one place money is rounded.

Minor units follow ISO 4217 (JPY 0, USD 2, KWD 3). A fee is rounded once, when it is made,
to its currency's minor unit with the plan's rounding mode; the precise amount is kept
beside it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal

# ISO 4217 exponents of the currencies payoff knows; others are refused by name.
MINOR_UNITS = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2,
    "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2,
    "INR": 2, "ISK": 0, "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2,
    "NOK": 2, "NZD": 2, "OMR": 3, "PHP": 2, "PLN": 2, "SAR": 2, "SEK": 2, "SGD": 2,
    "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2,
}  # fmt: skip

ROUNDING_MODES = {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP}


def minor_unit(currency: str) -> int:
    try:
        return MINOR_UNITS[currency]
    except KeyError:
        raise ValueError(f"unknown currency {currency!r} (ISO 4217 code expected)") from None


def quantum(currency: str) -> Decimal:
    """The smallest amount of a currency: 0.01 for USD, 1 for JPY, 0.001 for KWD."""
    return Decimal(1).scaleb(-minor_unit(currency))


def round_money(amount: Decimal, currency: str, rounding: str) -> Decimal:
    """Round a precise amount to the currency's minor unit with a named rounding mode."""
    return amount.quantize(quantum(currency), rounding=ROUNDING_MODES[rounding])


def to_minor(amount: Decimal, currency: str) -> int:
    """A rounded amount as an integer of minor units (cents for USD)."""
    scaled = amount.scaleb(minor_unit(currency))
    assert scaled == scaled.to_integral_value(), "round the amount first"
    return int(scaled)
