"""Plan validation as registries: each charge type's rules, and the plan's named checks."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payoff.core.plan import CHARGE_TYPES, PLAN_CHECKS, Charge, Plan
from payoff.core.pricing.spec import PriceSpec

PRICE = PriceSpec(model="per_unit", unit_price=Decimal(1))


def plan(*charges: Charge, **fields: object) -> Plan:
    values: dict[str, object] = {"id": "p", "version": 1, "currency": "USD"} | fields
    return Plan(charges=charges, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("charge", "errors"),
    [
        (
            Charge("c", "rent"),
            ["type: unknown charge type 'rent'; expected " + ", ".join(CHARGE_TYPES)],
        ),
        (Charge("c", "subscription"), ["amount: a subscription needs a non-negative amount"]),
        (
            Charge("c", "subscription", amount=Decimal(1), price=PRICE),
            ["model: not a field of subscription charges"],
        ),
        (Charge("c", "tokens"), ["model: a tokens charge has either a price model or a markup"]),
        (
            Charge("c", "tokens", classes=("input", "input"), price=PRICE),
            ["classes: a non-empty set of input, cache_read, cache_write, output"],
        ),
        (Charge("c", "task"), ["task_type: required (a task type, or '*')", "model: required"]),
        (
            Charge("c", "task", task_type="*", count="some", price=PRICE),
            ["count: one of completed, all, got 'some'"],
        ),
        (
            Charge("c", "outcome"),
            ["outcome: required (an outcome type, or '*')", "model: required"],
        ),
        (Charge(" ", "outcome", outcome="*", price=PRICE), ["name: a charge needs a name"]),
        (
            Charge("minimum_true_up", "subscription", amount=Decimal(1)),
            ["name: 'minimum_true_up' names invoice adjustment lines; choose another"],
        ),
        (
            Charge(
                "c", "task", task_type="*", price=PriceSpec(model="percentage", rate=Decimal("0.1"))
            ),
            ["model: percentage prices outcome values; use it on outcome charges"],
        ),
    ],
)
def test_each_charge_type_checks_its_own_fields(charge: Charge, errors: list[str]) -> None:
    assert charge.validate("USD") == [f"charge {charge.name!r}: {error}" for error in errors]


def test_the_plan_checks_run_in_order_before_its_charges() -> None:
    bad = plan(
        Charge("c", "subscription"),
        id="a@b", version=0, currency="XYZ", period="week", rounding="up",
        minimum=Decimal(5), maximum=Decimal(1),
    )  # fmt: skip
    assert [name for name, _ in PLAN_CHECKS][:5] == [
        "id",
        "version",
        "currency",
        "period",
        "rounding",
    ]
    assert bad.validate() == [
        "id: a non-empty name without '@', got 'a@b'",
        "version: a positive integer up to 2,147,483,647, got 0",
        "currency: unknown ISO 4217 code 'XYZ'",
        "period: one of month, got 'week'",
        "rounding: one of half_even, half_up, got 'up'",
        "minimum: 5 exceeds maximum 1",
        "charge 'c': amount: a subscription needs a non-negative amount",
    ]
