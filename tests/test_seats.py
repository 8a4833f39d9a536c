"""Seats: per-seat subscription charges, seat counts set with dates, prorated by days."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factories import REPO
from payoff.core.invoicing import Invoice
from payoff.core.periods import US_PER_DAY, Period
from payoff.core.plan import Charge, Plan
from payoff.core.rating import UsageTotals, fees_for
from payoff.core.seats import SeatCount, daily_seats, seat_days, segments
from payoff.plan_files import PlanError, parse_plan
from payoff.service import invoices, plans
from payoff.service import seats as seat_service
from payoff.service.access import CustomerNotFound
from payoff.service.plans import BillingError
from payoff.store.protocol import Store

MARKET = REPO / "examples" / "plans" / "market"
NOVEMBER = Period.month("2026-11")


def per_seat(amount: str = "19.00", minimum: int | None = None) -> Plan:
    charge = Charge(
        "seats", "subscription", amount=Decimal(amount), per_seat=True, minimum_seats=minimum
    )
    return Plan("p", 1, "USD", (charge,))


def day_us(period: Period, day: int) -> int:
    return period.start_us + day * US_PER_DAY


# -- the core: each day billed once, at its count -----------------------------------------

months = st.sampled_from(["2026-02", "2028-02", "2026-04", "2026-11", "2026-12"]).map(Period.month)
changes = st.lists(
    st.tuples(st.integers(-40, 40), st.integers(0, 500)), max_size=12
)  # (day from the period's start, seats): days before the period and after it too


def _counts(period: Period, drawn: list[tuple[int, int]]) -> list[SeatCount]:
    return [SeatCount(day_us(period, day), seats) for day, seats in drawn]


@given(months, changes, st.integers(0, 50), st.data())
def test_any_sequence_of_changes_bills_each_day_exactly_once(
    period: Period, drawn: list[tuple[int, int]], minimum: int, data: st.DataObject
) -> None:
    first = data.draw(st.integers(0, period.days - 1))
    last = data.draw(st.integers(first + 1, period.days))
    daily = daily_seats(_counts(period, drawn), period.start_us, first, last)
    assert len(daily) == last - first
    for offset, seats in enumerate(daily):
        # The count in effect: the last recorded of the latest day at or before this one.
        in_effect = [s for d, s in drawn if d <= first + offset]
        latest = max((d for d, _ in drawn if d <= first + offset), default=None)
        expected = [s for d, s in drawn if d == latest][-1] if in_effect else 0
        assert seats == expected
    billed = segments(daily, minimum)
    assert sum(days for _, days in billed) == last - first
    assert seat_days(billed) == sum(max(seats, minimum) for seats in daily)


@given(months, changes, st.integers(0, 50), st.decimals("0", "1000", places=2))
def test_totals_are_never_negative(
    period: Period, drawn: list[tuple[int, int]], minimum: int, amount: Decimal
) -> None:
    seats = tuple(daily_seats(_counts(period, drawn), period.start_us, 0, period.days))
    plan = per_seat(str(amount), minimum)
    totals = UsageTotals(active_days=period.days, period_days=period.days, seats=seats)
    (fee,) = fees_for(plan, totals, period.label)
    assert fee.amount >= 0 and fee.precise_amount >= 0


@given(months, st.integers(0, 1000), st.decimals("0", "1000", places=2), st.data())
def test_a_constant_count_over_a_full_period_is_the_full_price_however_it_is_split(
    period: Period, seats: int, amount: Decimal, data: st.DataObject
) -> None:
    plan = per_seat(str(amount))
    counts = [SeatCount(period.start_us - 3 * US_PER_DAY, seats)]
    whole = tuple(daily_seats(counts, period.start_us, 0, period.days))
    (fee,) = fees_for(plan, UsageTotals(period.days, period.days, seats=whole), period.label)
    assert fee.precise_amount == amount * seats  # exactly: one window, one division
    # Split into windows (a plan change), the seat-days still add up to the whole period's
    # and the precise amounts to the full price, to the last of 28 digits.
    cuts = sorted(set(data.draw(st.lists(st.integers(1, period.days - 1), max_size=5))))
    bounds = [0, *cuts, period.days]
    quantity, precise = Decimal(0), Decimal(0)
    for first, last in itertools.pairwise(bounds):
        daily = tuple(daily_seats(counts, period.start_us, first, last))
        totals = UsageTotals(active_days=last - first, period_days=period.days, seats=daily)
        (part,) = fees_for(plan, totals, period.label)
        quantity, precise = quantity + part.quantity, precise + part.precise_amount
    assert quantity == seats * period.days
    assert abs(precise - amount * seats) <= Decimal("1e-20")


def test_the_minimum_applies_day_by_day_and_the_line_says_seats_by_days() -> None:
    counts = [SeatCount(day_us(NOVEMBER, 0), 2), SeatCount(day_us(NOVEMBER, 20), 9)]
    seats = tuple(daily_seats(counts, NOVEMBER.start_us, 0, 30))
    (fee,) = fees_for(per_seat("30", minimum=5), UsageTotals(30, 30, seats=seats), "2026-11")
    assert fee.seats == ((5, 20), (9, 10))
    assert fee.quantity == 5 * 20 + 9 * 10
    assert fee.precise_amount == Decimal(30) * 190 / 30


def test_plans_without_seats_keep_their_body_and_seat_fields_are_checked() -> None:
    flat = (
        "id: f\nversion: 1\ncurrency: USD\ncharges:\n- {name: b, type: subscription, amount: 1}\n"
    )
    _, body = parse_plan(flat)
    assert set(body["charges"][0]) == set(json.loads(json.dumps(body))["charges"][0])
    assert "per_seat" not in body["charges"][0] and "minimum_seats" not in body["charges"][0]
    with pytest.raises(PlanError, match="minimum_seats: only a per_seat subscription"):
        parse_plan(flat.replace("amount: 1}", "amount: 1, minimum_seats: 3}"))
    with pytest.raises(PlanError, match="per_seat: not a field of tokens charges"):
        parse_plan(
            flat.replace("type: subscription, amount: 1", "type: tokens, model: per_unit, "
                         "unit_price: 1, per_seat: true")
        )  # fmt: skip


# -- the store: append-only, as of a time (both backends) ---------------------------------


def test_seat_counts_are_appended_and_read_as_of_a_time(store: Store) -> None:
    assert store.set_seats("acme", 100, 3, now_us=10) is True
    assert store.set_seats("acme", 100, 3, now_us=11) is False  # the same again: nothing new
    assert store.set_seats("acme", 100, 4, now_us=12) is True
    assert store.set_seats("acme", 50, 2, now_us=13) is True
    assert store.set_seats("globex", 100, 7, now_us=14) is True
    assert [(c.effective_at_us, c.seats) for c in store.seat_counts("acme", 12)] == [
        (100, 3),
        (100, 4),
    ]
    assert [(c.customer, c.seats) for c in store.seat_counts(None, 20)] == [
        ("acme", 3),
        ("acme", 4),
        ("acme", 2),
        ("globex", 7),
    ]


# -- the market plan, billed and checked against a hand computation -----------------------


def test_the_per_seat_market_plan_bills_seat_days_as_computed_by_hand(store: Store) -> None:
    plans.apply_plan(store, MARKET / "per-seat.yaml")
    plans.add_customer(store, "acme", "Acme")
    plans.subscribe(store, "acme", "market-per-seat", dt.date(2026, 11, 1))
    seat_service.set_seats(store, "acme", 8, dt.date(2026, 10, 20))  # held when November opens
    seat_service.set_seats(store, "acme", 12, dt.date(2026, 11, 11))
    seat_service.set_seats(store, "acme", 3, dt.date(2026, 11, 21))  # below the minimum of 5
    (document,) = invoices.run_invoices(store, "2026-11", as_of_us=invoices.now_us())
    # By hand: 8 seats x 10 days + 12 x 10 + 5 (the minimum) x 10 = 250 seat-days;
    # $19.00 x 250 / 30 days = $158.333..., $158.33.
    (line,) = document["fees"]
    assert line["seats"] == [
        {"seats": 8, "days": 10},
        {"seats": 12, "days": 10},
        {"seats": 5, "days": 10},
    ]
    assert (line["units"], line["amount"], document["total"]) == ("250", "158.33", "158.33")
    stored = store.get_invoice(document["id"])  # read back through the invoice codec
    assert stored is not None
    assert stored.invoice.fees[0].seats == ((8, 10), (12, 10), (5, 10))
    assert Invoice.from_json(stored.invoice.to_json(), "draft") == stored.invoice


def test_a_seat_change_may_not_reach_into_a_finalized_period(store: Store) -> None:
    plans.apply_plan(store, MARKET / "per-seat.yaml")
    plans.add_customer(store, "acme", None)
    plans.subscribe(store, "acme", "market-per-seat", dt.date(2026, 11, 1))
    (document,) = invoices.run_invoices(store, "2026-11", as_of_us=invoices.now_us())
    invoices.act_on_invoice(store, document["id"], "finalize")
    with pytest.raises(BillingError, match="finalized: a seat change must start after it"):
        seat_service.set_seats(store, "acme", 4, dt.date(2026, 11, 30))
    assert seat_service.set_seats(store, "acme", 4, dt.date(2026, 12, 1)) is True
    with pytest.raises(BillingError, match="seats: a count from 0"):
        seat_service.set_seats(store, "acme", -1, dt.date(2026, 12, 1))
    with pytest.raises(CustomerNotFound, match="no customer 'nobody'"):
        seat_service.set_seats(store, "nobody", 1, dt.date(2026, 12, 1))
    assert [row["seats"] for row in seat_service.list_seats(store, "acme")] == [4]


def test_a_quote_prices_seats_for_the_whole_period() -> None:
    plan, _ = parse_plan((MARKET / "per-seat.yaml").read_bytes())
    document = plans_quote(plan, {"seats": Decimal(7)})
    assert document["fees"][0]["amount"] == "133.00"  # 7 x $19.00
    assert plans_quote(plan, {"seats": Decimal(2)})["total"] == "95.00"  # the minimum, 5


def plans_quote(plan: Plan, quantities: dict[str, Decimal]) -> dict[str, object]:
    from payoff.service.rating import quote_document

    return quote_document(plan, quantities, {})
