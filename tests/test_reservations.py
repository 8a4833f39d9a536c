"""Reservations: held against the available credit, refused with the reason beyond it,
released at expiry, settled once; and no overspend when many are asked at once of a real
server on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from api_support import live_server
from clock_support import set_clock
from payoff.core.credits import CreditEntry
from payoff.core.reservations import (
    LimitError,
    Reservation,
    ReservationRefused,
    available_minor,
    hold,
)
from payoff.service import access, plans
from payoff.service.balances import live_balance
from payoff.service.credits import GrantTerms, grant_credits, wallet_balance
from payoff.service.reservations import ReservationNotFound, reserve, set_spend_limit, settle
from payoff.store import open_store
from payoff.store.protocol import Store

PLAN = (
    "id: p\nversion: 1\ncurrency: USD\n"
    "charges:\n  - {name: s, type: subscription, amount: '1.00'}\n"
)
HOUR_US = 3600 * 1_000_000


def wanted(task: str, amount: int, at: int = 0) -> Reservation:
    return Reservation(f"res:c:{task}", "c", task, amount, "USD", at, at + HOUR_US)


def test_a_reservation_holds_what_is_available_and_no_more() -> None:
    wallet = [CreditEntry("g", "c", "grant", "g", 1000, "USD", 0)]
    first = hold(wallet, [], wanted("t1", 600))
    with pytest.raises(ReservationRefused, match=r"c has 4.00 USD available, 5.00 asked"):
        hold(wallet, [first], wanted("t2", 500))
    assert hold(wallet, [first], wanted("t2", 400)).amount_minor == 400
    # The same request again is the same reservation; another amount for the task is refused.
    assert hold(wallet, [first], wanted("t1", 600)) is first
    with pytest.raises(ReservationRefused, match="already holds"):
        hold(wallet, [first], wanted("t1", 700))


def test_a_reservation_is_released_at_its_expiry_instant() -> None:
    wallet = [CreditEntry("g", "c", "grant", "g", 1000, "USD", 0)]
    held = wanted("t1", 1000)
    assert available_minor(wallet, [held], held.expires_at_us - 1) == 0
    assert available_minor(wallet, [held], held.expires_at_us) == 1000
    assert held.shown_status(held.expires_at_us) == "released"
    settled = Reservation(**{**held.__dict__, "status": "settled", "settled_minor": 10})
    assert available_minor(wallet, [settled], 1) == 1000


@pytest.fixture
def funded(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Customer c on a USD plan with 10.00 of credit."""
    set_clock(monkeypatch, dt.datetime(2026, 11, 10, tzinfo=dt.UTC))
    store.add_customer("c", None, 0)
    plans.apply_plan_text(store, PLAN, "p.yaml")
    plans.subscribe(store, "c", "p", dt.date(2026, 10, 1))
    grant_credits(store, "c", "10.00", GrantTerms(grant_id="g"))
    return store


def test_reservations_on_the_store(funded: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    held, created = reserve(funded, "c", "t1", "6.00", expires_in_s=60)
    assert created and (held["status"], held["amount"]) == ("held", "6.00")
    again, created = reserve(funded, "c", "t1", "6.00", expires_in_s=60)
    assert not created and again == held
    with pytest.raises(ReservationRefused, match=r"4\.00 USD available, 5\.00 asked"):
        reserve(funded, "c", "t2", "5.00")
    done = settle(funded, held["id"], "5.25")
    assert (done["status"], done["settled_cost"]) == ("settled", "5.25")
    assert settle(funded, held["id"], "9.00")["settled_cost"] == "5.25"  # once
    reserve(funded, "c", "t2", "5.00", expires_in_s=60)
    # Sixty seconds later the unsettled one is released and its amount free again.
    set_clock(monkeypatch, dt.datetime(2026, 11, 10, 0, 1, tzinfo=dt.UTC))
    assert reserve(funded, "c", "t3", "10.00")[0]["status"] == "held"
    with pytest.raises(ReservationNotFound):
        settle(funded, "res:c:nope", "1")
    assert wallet_balance(funded, "c")["balance"] == "10.00"  # reservations hold, not spend


def test_spend_limits_bound_reservations(funded: Store) -> None:
    with pytest.raises(LimitError, match="soft limit is above"):
        set_spend_limit(funded, "c", "6.00", "5.00")
    assert set_spend_limit(funded, "c", "1.00", "5.00") == {
        "customer": "c",
        "currency": "USD",
        "soft": "1.00",
        "hard": "5.00",
    }
    spent = Decimal(str(live_balance(funded, "c")["spend"]))
    assert spent <= 1  # the subscription's share of the month
    held, _ = reserve(funded, "c", "t1", "3.00")
    assert held["over_soft_limit"] is True
    shown = live_balance(funded, "c")
    assert (shown["over_soft_limit"], shown["over_hard_limit"]) == (True, False)
    with pytest.raises(ReservationRefused, match=r"hard limit is 5\.00 USD: .* 3\.00 asked"):
        reserve(funded, "c", "t2", "3.00")
    set_spend_limit(funded, "c", None, None)
    assert reserve(funded, "c", "t2", "3.00")[0]["over_soft_limit"] is False


CONCURRENT = 60
BALANCE = Decimal("10.00")


@pytest.mark.slow
def test_concurrent_reservations_never_hold_more_than_the_balance(
    ledger_target: str, tmp_path: Path
) -> None:
    store = open_store(ledger_target)
    try:
        store.add_customer("c", None, 0)
        plans.apply_plan_text(store, PLAN, "p.yaml")
        plans.subscribe(store, "c", "p", dt.date(2026, 1, 1))
        grant_credits(store, "c", str(BALANCE), GrantTerms(grant_id="g"))
        admin = access.create_key(store, "admin")[1]
    finally:
        store.close()
    answers: list[tuple[int, dict[str, Any]]] = []
    lock, start = threading.Lock(), threading.Barrier(CONCURRENT)

    def ask(number: int, url: str) -> None:
        body = {"customer": "c", "task": f"t{number}", "amount": "0.37"}
        with httpx.Client(base_url=url, timeout=60) as http:
            start.wait()
            response = http.post(
                "/v1/reservations", json=body, headers={"Authorization": f"Bearer {admin}"}
            )
        with lock:
            answers.append((response.status_code, response.json()))

    db = cast(Path, ledger_target)  # a file path or a PostgreSQL URL, passed through as text
    with live_server(db, tmp_path / "serve.log", "--workers", "2") as server:
        threads = [threading.Thread(target=ask, args=(n, server.url)) for n in range(CONCURRENT)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted({status for status, _ in answers})
    assert statuses == [201, 409], answers[:3]
    held = [Decimal(body["amount"]) for status, body in answers if status == 201]
    refused = [body["detail"] for status, body in answers if status == 409]
    # 10.00 / 0.37: exactly 27 fit, whatever the order the requests were decided in.
    assert (len(held), sum(held)) == (27, Decimal("9.99"))
    assert len(refused) == CONCURRENT - 27
    assert all("available" in detail and "0.37 asked" in detail for detail in refused)
    reopened = open_store(ledger_target)
    try:
        stored = reopened.reservations("c")
    finally:
        reopened.close()
    assert sum(r.amount_minor for r in stored) == 999
