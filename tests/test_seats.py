"""Seats: per-seat subscription charges, seat counts set with dates, prorated by days."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from api_support import prepare_ledger
from factories import REPO
from payoff.api import ServerConfig, create_app
from payoff.core.economics import CustomerPeriod, simulate_plan
from payoff.core.invoicing import Invoice
from payoff.core.periods import US_PER_DAY, Period
from payoff.core.plan import Charge, Plan
from payoff.core.printable import printed_line
from payoff.core.rating import UsageTotals, fees_for
from payoff.core.seats import SeatCount, daily_seats, seat_days, segments
from payoff.plan_files import PlanError, parse_plan
from payoff.service import invoices, plans
from payoff.service import seats as seat_service
from payoff.service.access import CustomerNotFound
from payoff.service.plans import BillingError
from payoff.service.verify import verify_ledger
from payoff.store import open_store
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


# -- the shells: the CLI (a real subprocess) and HTTP -------------------------------------


def _payoff(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("payoff")), *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.mark.slow
def test_the_seats_commands_set_and_list_counts(tmp_path: Path) -> None:
    db = str(tmp_path / "ledger.db")
    store = open_store(db)
    plans.add_customer(store, "acme", None)
    store.close()
    done = _payoff("--db", db, "seats", "set", "acme", "12", "--from", "2026-11-11")
    assert done.returncode == 0 and "acme: 12 seats from 2026-11-11" in done.stdout, done.stderr
    again = _payoff("--db", db, "seats", "set", "acme", "12", "--from", "2026-11-11")
    assert "(already set)" in again.stdout
    refused = _payoff("--db", db, "seats", "set", "nobody", "3", "--from", "2026-11-11")
    assert refused.returncode == 2 and "no customer 'nobody'" in refused.stderr
    bad_day = _payoff("--db", db, "seats", "set", "acme", "3", "--from", "2026-11-31")
    assert bad_day.returncode == 2 and "a date is YYYY-MM-DD" in bad_day.stderr
    listed = _payoff("--db", db, "seats", "list", "acme", "--json")
    rows = json.loads(listed.stdout)
    assert [(r["customer"], r["from"], r["seats"]) for r in rows] == [("acme", "2026-11-11", 12)]
    table = _payoff("--db", db, "seats", "list", "acme")
    assert "2026-11-11" in table.stdout and "12" in table.stdout


def test_seats_over_http_need_the_admin_key(tmp_path: Path) -> None:
    keys = prepare_ledger(tmp_path / "l.db")
    config = ServerConfig(str(tmp_path / "l.db"), builders=0)
    admin = keys.header(keys.admin)
    body = {"customer": "acme", "seats": 7, "from": "2026-11-02"}
    with TestClient(create_app(config)) as client:
        first = client.post("/v1/seats", json=body, headers=admin)
        assert first.status_code == 200, first.text
        assert first.json() == {**body, "changed": True}
        assert client.post("/v1/seats", json=body, headers=admin).json()["changed"] is False
        listed = client.get("/v1/seats/acme", headers=admin).json()
        assert [(r["from"], r["seats"]) for r in listed] == [("2026-11-02", 7)]
        assert (
            client.post("/v1/seats", json=body, headers=keys.header(keys.acme)).status_code == 403
        )
        negative = client.post("/v1/seats", json={**body, "seats": -1}, headers=admin)
        assert negative.status_code == 422
        unknown = client.post("/v1/seats", json={**body, "customer": "nobody"}, headers=admin)
        assert unknown.status_code == 404 and "no customer 'nobody'" in unknown.text


def test_a_finalized_per_seat_invoice_is_re_derived_from_its_seat_counts(store: Store) -> None:
    plans.apply_plan(store, MARKET / "per-seat.yaml")
    plans.add_customer(store, "acme", None)
    plans.subscribe(store, "acme", "market-per-seat", dt.date(2026, 11, 1))
    seat_service.set_seats(store, "acme", 9, dt.date(2026, 11, 1))
    seat_service.set_seats(store, "acme", 6, dt.date(2026, 11, 16))
    seat_service.set_seats(store, "acme", 7, dt.date(2026, 11, 16))  # the later count wins
    (document,) = invoices.run_invoices(store, "2026-11", as_of_us=invoices.now_us())
    assert document["fees"][0]["seats"] == [{"seats": 9, "days": 15}, {"seats": 7, "days": 15}]
    invoices.act_on_invoice(store, document["id"], "finalize")
    seat_service.set_seats(store, "acme", 50, dt.date(2026, 12, 1))  # later: not November's
    result = verify_ledger(store)
    assert [str(m) for m in result.mismatches] == [] and result.not_rederived == []
    assert result.invoices == 1


def test_the_printed_line_says_seats_by_days() -> None:
    plan = per_seat("19.00", minimum=5)
    seats = (8,) * 10 + (12,) * 19 + (1,)
    (fee,) = fees_for(plan, UsageTotals(30, 30, seats=seats), "2026-11")
    line = printed_line(fee, plan.charges[0])
    assert (line.description, line.unit, line.unit_price) == (
        "Seats",
        "seat-days",
        "19.00 per seat per month",
    )
    assert line.note == "8 seats x 10 days; 12 seats x 19 days; 5 seats x 1 day"


def test_simulate_bills_the_seats_held_as_an_invoice_run_does() -> None:
    held = CustomerPeriod(seats=(8,) * 10 + (12,) * 10 + (3,) * 10)
    plan, _ = parse_plan((MARKET / "per-seat.yaml").read_bytes())
    figures = simulate_plan(plan, {"acme": held}, "2026-11", 30)
    assert figures.revenue == Decimal("158.33")  # the worked example: 250 seat-days
