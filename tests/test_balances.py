"""The real-time balance: credit available less the open period's spend rated so far,
seen by the next read after a record is acknowledged, a rating reused while nothing
arrived, on both backends; and over HTTP, a customer key reading its own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from clock_support import set_clock
from payoff.core.periods import to_us
from payoff.service import IngestReport, plans
from payoff.service.balances import RATED_MAX_AGE_US, live_balance
from payoff.service.credits import GrantTerms, grant_credits
from payoff.store.protocol import Store

PLAN = (
    "id: tok\nversion: 1\ncurrency: USD\ncharges:\n"
    "  - {name: tok, type: tokens, model: per_unit, unit_price: '2.00', per: 1000}\n"
)
NOV_10 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)


def step(id: str, tokens: int) -> dict[str, Any]:
    return {
        "id": id,
        "time": "2026-11-10T00:00:00Z",
        "customer": "c",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": tokens,
        "output_tokens": 0,
    }


def test_the_balance_is_credit_less_the_periods_spend_so_far(
    store: Store, ingest: Callable[..., IngestReport], monkeypatch: pytest.MonkeyPatch
) -> None:
    at = to_us(NOV_10)
    set_clock(monkeypatch, at)
    assert ingest(step("n1", 1000)).clean
    plans.apply_plan_text(store, PLAN, "tok.yaml")
    plans.subscribe(store, "c", "tok", dt.date(2026, 10, 1))
    grant_credits(store, "c", "50.00", GrantTerms(grant_id="g"))
    set_clock(monkeypatch, at + 1)
    first = live_balance(store, "c")
    assert first == {
        "customer": "c",
        "currency": "USD",
        "period": "2026-11",
        "credits_available": "50.00",
        "spend": "2.00",
        "balance": "48.00",
        "rated_as_of": "2026-11-10T00:00:00.000001Z",
        "over_soft_limit": False,
        "over_hard_limit": False,
    }
    # Nothing arrived: the rating made at the first read is reused, not made again.
    set_clock(monkeypatch, at + 500_000)
    assert live_balance(store, "c")["rated_as_of"] == first["rated_as_of"]
    # A record acknowledged is in the very next read.
    assert ingest(step("n2", 5000)).clean
    set_clock(monkeypatch, at + 500_001)
    after = live_balance(store, "c")
    assert (after["spend"], after["balance"]) == ("12.00", "38.00")
    assert after["rated_as_of"] == "2026-11-10T00:00:00.500001Z"
    # However quiet, a rating is made again once it is a second old.
    set_clock(monkeypatch, at + 500_001 + RATED_MAX_AGE_US)
    assert live_balance(store, "c")["rated_as_of"] == "2026-11-10T00:00:01.500001Z"
