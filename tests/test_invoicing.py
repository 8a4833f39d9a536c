"""Invoice totals and the lifecycle table, pure."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from payoff.core.invoicing import TRANSITIONS, TransitionError, totals, transition
from payoff.core.plan import Charge, Plan
from payoff.core.rating import Fee

STATUSES = ("draft", "finalized", "paid", "void")
ACTIONS = ("finalize", "pay", "void")
money = st.decimals(min_value=0, max_value=10**6, places=2, allow_nan=False, allow_infinity=False)


def plan(minimum: Decimal | None, maximum: Decimal | None) -> Plan:
    return Plan(
        id="p",
        version=1,
        currency="USD",
        minimum=minimum,
        maximum=maximum,
        charges=(Charge(name="s", type="subscription", amount=Decimal(1)),),
    )


@given(amounts=st.lists(money, max_size=8), minimum=st.none() | money, maximum=st.none() | money)
def test_total_is_rounded_fees_plus_true_up_minus_cap(
    amounts: list[Decimal], minimum: Decimal | None, maximum: Decimal | None
) -> None:
    if minimum is not None and maximum is not None and minimum > maximum:
        minimum, maximum = maximum, minimum
    fees = [Fee(f"c{i}", Decimal(1), amount, amount, "2026-11") for i, amount in enumerate(amounts)]
    result = totals(plan(minimum, maximum), fees)
    assert result.subtotal == sum(amounts, Decimal(0))
    assert result.total == result.subtotal + result.minimum_true_up - result.maximum_discount
    assert result.minimum_true_up >= 0 and result.maximum_discount >= 0
    if minimum is not None:
        assert result.total >= minimum
    if maximum is not None:
        assert result.total <= maximum


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_transition_legal_or_refused(status: str, action: str) -> None:
    if (status, action) in TRANSITIONS:
        assert transition(status, action) == TRANSITIONS[(status, action)]
    else:
        with pytest.raises(TransitionError, match=f"cannot {action} an invoice that is {status}"):
            transition(status, action)


def test_the_lifecycle() -> None:
    assert TRANSITIONS == {
        ("draft", "finalize"): "finalized",
        ("finalized", "pay"): "paid",
        ("finalized", "void"): "void",
    }
