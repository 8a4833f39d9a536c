"""Charge models: worked examples, table-driven, and properties (hypothesis)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payoff.core.currency import round_money, to_minor
from payoff.core.pricing import PriceSpec, Tier, price, price_values, validate

D = Decimal
TIERS = (Tier(D(1000), D("0.30")), Tier(D(5000), D("0.20")), Tier(None, D("0.10")))
FLAT_TIERS = (Tier(D(1000), D("0.10")), Tier(None, D("0.05"), D("20.00")))


def spec(model: str, **fields: object) -> PriceSpec:
    return PriceSpec(model=model, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("priced", "quantity", "expected"),
    [
        # The worked examples.
        (spec("graduated", tiers=TIERS), "6000", "1200.00"),
        (spec("volume", tiers=TIERS), "6000", "600.00"),
        (spec("package", package_size=D(20), package_price=D("10.00")), "0", "0"),
        (spec("package", package_size=D(20), package_price=D("10.00")), "20", "10.00"),
        (spec("package", package_size=D(20), package_price=D("10.00")), "20.1", "20.00"),
        (spec("package", package_size=D(20), package_price=D("10.00")), "98", "50.00"),
        # Bounds are inclusive: 1000 is in the first tier, 1000.5 in the second.
        (spec("graduated", tiers=TIERS), "1000", "300.00"),
        (spec("graduated", tiers=TIERS), "1000.5", "300.10"),
        (spec("volume", tiers=TIERS), "1000", "300.00"),
        (spec("volume", tiers=TIERS), "1000.5", "200.10"),
        (spec("volume", tiers=TIERS), "5000", "1000.00"),
        (spec("volume", tiers=TIERS), "5001", "500.10"),
        # Flat fees: the first tier counts as reached at zero; the second once passed.
        (spec("graduated", tiers=(Tier(D(10), D(1), D(5)), Tier(None, D(0), D(7)))), "0", "5"),
        (spec("graduated", tiers=FLAT_TIERS), "1000", "100.00"),
        (spec("graduated", tiers=FLAT_TIERS), "1200", "130.00"),
        (spec("volume", tiers=FLAT_TIERS), "1200", "80.00"),
        # per_unit with free units and per: 2.00 per million tokens, first million free.
        (
            spec("per_unit", unit_price=D("2.00"), per=D(1_000_000), free_units=D(1_000_000)),
            "3500000",
            "5.00",
        ),
        (spec("per_unit", unit_price=D("0.99"), free_units=D(100)), "40", "0"),
        (spec("per_unit", unit_price=D("0.99"), free_units=D(100)), "250", "148.50"),
        # Free units apply before tiers.
        (spec("graduated", tiers=TIERS, free_units=D(1000)), "7000", "1200.00"),
        (spec("package", package_size=D(1000), package_price=D(3), per=D(1000)), "1500000", "6"),
    ],
)
def test_worked_examples(priced: PriceSpec, quantity: str, expected: str) -> None:
    assert validate(priced) == []
    assert price(priced, D(quantity)) == D(expected)


def test_percentage_of_outcome_values() -> None:
    fee = spec(
        "percentage",
        rate=D("0.05"),
        fixed_fee=D("1.00"),
        min_per_event=D("100.00"),
        max_per_event=D("5000.00"),
    )
    # 5% of 1,000 + 1 = 51 -> lifted to 100; of 10,000 + 1 = 501; of 1,000,000 + 1 -> 5,000.
    assert price_values(fee, [D(1000), D(10_000), D(1_000_000)]) == D("5601.00")
    assert price_values(fee, []) == 0
    first_free = spec("percentage", rate=D("0.10"), free_units=D(1))
    assert price_values(first_free, [D(50), D(70)]) == D("7.0")


@pytest.mark.parametrize(
    ("priced", "message"),
    [
        (spec("per_unit"), "unit_price: required"),
        (spec("per_unit", unit_price=D(-1)), "unit_price: must be a finite, non-negative number"),
        (spec("per_unit", unit_price=D(1), per=D(0)), "per: must be positive"),
        (spec("graduated"), "tiers: required"),
        (
            spec("graduated", tiers=(Tier(D(10), D(1)), Tier(D(5), D(1)), Tier(None, D(1)))),
            "tiers[1].up_to: tiers must ascend",
        ),
        (
            spec("volume", tiers=(Tier(None, D(1)), Tier(D(5), D(1)))),
            "tiers[0].up_to: only the last tier may be open",
        ),
        (spec("volume", tiers=(Tier(D(5), D(1)),)), "tiers[0].up_to: the last tier must be open"),
        (
            spec("graduated", tiers=(Tier(None, D(-1)),)),
            "tiers[0].unit_price: must be a finite, non-negative number",
        ),
        (spec("package", package_size=D(0), package_price=D(1)), "package_size: must be positive"),
        (
            spec("percentage", rate=D("0.1"), min_per_event=D(5), max_per_event=D(1)),
            "min_per_event: 5 exceeds max_per_event 1",
        ),
        (spec("banded"), "model: unknown charge model 'banded'"),
    ],
)
def test_invalid_specs_name_the_field(priced: PriceSpec, message: str) -> None:
    assert any(message in error for error in validate(priced)), validate(priced)


# -- properties ----------------------------------------------------------------------------

quantities = st.decimals(
    min_value=0, max_value=10**7, places=3, allow_nan=False, allow_infinity=False
)
prices = st.decimals(min_value=0, max_value=100, places=4, allow_nan=False, allow_infinity=False)


@st.composite
def tier_tables(draw: st.DrawFn) -> tuple[Tier, ...]:
    bounds = sorted(set(draw(st.lists(st.integers(1, 10**6), min_size=0, max_size=4))))
    tiers = [Tier(D(b), draw(prices), draw(prices)) for b in bounds]
    return (*tiers, Tier(None, draw(prices), draw(prices)))


@given(tiers=tier_tables(), a=quantities, b=quantities)
def test_graduated_never_decreases(tiers: tuple[Tier, ...], a: Decimal, b: Decimal) -> None:
    graduated = spec("graduated", tiers=tiers)
    low, high = sorted((a, b))
    assert price(graduated, low) <= price(graduated, high)


@given(size=st.integers(1, 1000), unit=prices, a=quantities, b=quantities)
def test_package_never_decreases(size: int, unit: Decimal, a: Decimal, b: Decimal) -> None:
    package = spec("package", package_size=D(size), package_price=unit)
    low, high = sorted((a, b))
    assert price(package, low) <= price(package, high)


@given(tiers=tier_tables(), quantity=quantities)
def test_volume_prices_all_units_at_the_tier_the_total_falls_in(
    tiers: tuple[Tier, ...], quantity: Decimal
) -> None:
    # Volume may drop at a boundary (more units, a cheaper tier for all); it follows the rule.
    tier = next(t for t in tiers if t.up_to is None or quantity <= t.up_to)
    assert price(spec("volume", tiers=tiers), quantity) == tier.flat + quantity * tier.unit_price


@given(unit=prices, quantity=quantities)
def test_one_tier_graduated_one_tier_volume_and_per_unit_agree(
    unit: Decimal, quantity: Decimal
) -> None:
    one = (Tier(None, unit),)
    expected = price(spec("per_unit", unit_price=unit), quantity)
    assert price(spec("graduated", tiers=one), quantity) == expected
    assert price(spec("volume", tiers=one), quantity) == expected


@given(
    amount=st.decimals(
        min_value=0, max_value=10**9, places=6, allow_nan=False, allow_infinity=False
    ),
    currency=st.sampled_from(["USD", "JPY", "KWD"]),
    rounding=st.sampled_from(["half_even", "half_up"]),
)
def test_rounding_moves_a_fee_by_at_most_half_a_minor_unit(
    amount: Decimal, currency: str, rounding: str
) -> None:
    rounded = round_money(amount, currency, rounding)
    half = D(1).scaleb(-{"USD": 2, "JPY": 0, "KWD": 3}[currency]) / 2
    assert abs(rounded - amount) <= half
    assert to_minor(rounded, currency) == int(
        rounded.scaleb({"USD": 2, "JPY": 0, "KWD": 3}[currency])
    )


def test_rounding_modes_differ_on_ties() -> None:
    assert round_money(D("0.125"), "USD", "half_even") == D("0.12")
    assert round_money(D("0.125"), "USD", "half_up") == D("0.13")
    assert round_money(D("2.5"), "JPY", "half_even") == D("2")
    assert D("0.125").quantize(D("0.01"), ROUND_HALF_EVEN) == D("0.12")
