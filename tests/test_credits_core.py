"""The wallet rules, pure: grants, draw order, expiry at the exact instant, rollover, void."""

from __future__ import annotations

import pytest

from payoff.core.credits import (
    CreditEntry,
    CreditError,
    applied_minor,
    balance_minor,
    draw_down,
    expiries,
    grants,
    pending_minor,
    restorations,
    rollover,
)

DAY = 86_400_000_000


def grant(
    id: str,
    amount: int,
    at: int = 0,
    *,
    priority: int = 100,
    expires: int | None = None,
    currency: str = "USD",
) -> CreditEntry:
    return CreditEntry(
        id, "c", "grant", id, amount, currency, at, priority=priority, expires_at_us=expires
    )


def test_the_balance_is_the_sum_of_the_entries_and_pending_is_credit_not_yet_effective() -> None:
    entries = [grant("a", 1000), grant("b", 250, at=5 * DAY)]
    assert balance_minor(entries) == 1250
    assert balance_minor(entries, at_us=DAY) == 1000
    assert pending_minor(entries, at_us=DAY) == 250
    assert pending_minor(entries, at_us=5 * DAY) == 0


@pytest.mark.parametrize(
    ("grants_given", "drawn"),
    [
        # priority first: 1 before 2, whatever the amounts
        (
            [grant("low", 500, priority=2), grant("high", 300, priority=1)],
            {"high": 300, "low": 400},
        ),
        # same priority: the soonest expiry first, no expiry last
        (
            [
                grant("never", 500),
                grant("late", 500, expires=9 * DAY),
                grant("soon", 200, expires=3 * DAY),
            ],
            {"soon": 200, "late": 500},
        ),
        # same priority and expiry: the oldest first
        ([grant("new", 900, at=2), grant("old", 100, at=1)], {"old": 100, "new": 600}),
    ],
)  # fmt: skip
def test_an_invoice_draws_by_priority_then_soonest_expiry_then_age(
    grants_given: list[CreditEntry], drawn: dict[str, int]
) -> None:
    consumed = draw_down(grants_given, "inv-1", 700, "USD", at_us=DAY)
    assert {e.grant: -e.amount_minor for e in consumed} == drawn
    assert all(e.kind == "consumption" and e.invoice == "inv-1" for e in consumed)


def test_credits_exceeding_the_total_draw_only_the_total() -> None:
    entries = [grant("a", 10_000)]
    consumed = draw_down(entries, "inv-1", 1234, "USD", at_us=DAY)
    assert applied_minor(consumed, "inv-1") == 1234
    assert balance_minor([*entries, *consumed]) == 10_000 - 1234
    assert draw_down(entries, "inv-0", 0, "USD", at_us=DAY) == []
    assert draw_down(entries, "inv-neg", -500, "USD", at_us=DAY) == []


def test_a_grant_in_another_currency_or_not_yet_effective_is_not_drawn() -> None:
    entries = [grant("eur", 500, currency="EUR"), grant("later", 500, at=2 * DAY)]
    assert draw_down(entries, "inv-1", 100, "USD", at_us=DAY) == []


def test_expiry_happens_at_the_exact_instant_as_an_entry_of_its_own() -> None:
    expires = 3 * DAY + 17
    entries = [grant("a", 800, expires=expires)]
    # One microsecond before, the credit is usable and nothing expires.
    assert expiries(entries, expires - 1) == []
    assert applied_minor(draw_down(entries, "i", 800, "USD", expires - 1), "i") == 800
    # At the instant itself, what is left expires, dated that instant.
    (expiry,) = expiries(entries, expires)
    assert (expiry.kind, expiry.amount_minor, expiry.at_us) == ("expiry", -800, expires)
    after = [*entries, expiry]
    assert balance_minor(after) == 0
    assert expiries(after, expires + DAY) == []  # never twice
    assert draw_down(after, "j", 100, "USD", expires) == []


def test_only_what_is_left_expires() -> None:
    entries = [grant("a", 800, expires=5 * DAY)]
    entries += draw_down(entries, "inv-1", 300, "USD", at_us=DAY)
    (expiry,) = expiries(entries, 5 * DAY)
    assert expiry.amount_minor == -500


def test_voiding_gives_back_each_grant_what_the_invoice_drew_once() -> None:
    entries = [grant("a", 300, priority=1), grant("b", 1000, priority=2)]
    entries += draw_down(entries, "inv-1", 500, "USD", at_us=DAY)
    back = restorations(entries, "inv-1", at_us=2 * DAY)
    assert {e.grant: e.amount_minor for e in back} == {"a": 300, "b": 200}
    assert all(e.kind == "void" for e in back)
    entries += back
    assert balance_minor(entries) == 1300
    assert restorations(entries, "inv-1", at_us=3 * DAY) == []  # voided once


def test_credit_given_back_to_an_expired_grant_expires_again_at_once() -> None:
    entries = [grant("a", 300, expires=2 * DAY)]
    entries += draw_down(entries, "inv-1", 300, "USD", at_us=DAY)
    back = restorations(entries, "inv-1", at_us=3 * DAY)
    assert [(e.kind, e.amount_minor, e.at_us) for e in back] == [
        ("void", 300, 3 * DAY),
        ("expiry", -300, 3 * DAY),
    ]
    assert balance_minor([*entries, *back]) == 0


def test_rollover_carries_what_is_left_up_to_the_cap_with_its_own_expiry() -> None:
    entries = [grant("allowance-10", 1000)]
    entries += draw_down(entries, "inv-10", 350, "USD", at_us=DAY)
    moved = rollover(entries, "allowance-10", "allowance-10:rolled", 500, 30 * DAY, 60 * DAY)
    assert [(e.kind, e.grant, e.amount_minor) for e in moved] == [
        ("rollover", "allowance-10", -650),
        ("grant", "allowance-10:rolled", 500),
    ]
    assert moved[1].expires_at_us == 60 * DAY and moved[1].at_us == 30 * DAY
    after = [*entries, *moved]
    assert grants(after)["allowance-10"].remaining_minor == 0
    assert balance_minor(after) == 500
    # Under the cap, all of it is carried; rolled over once, nothing is left to roll again.
    assert rollover(after, "allowance-10", "x", 500, 31 * DAY, None) == []


def test_entries_that_do_not_hold_together_are_refused() -> None:
    with pytest.raises(CreditError, match="wrong sign"):
        grant("a", -5)
    with pytest.raises(CreditError, match="own grant"):
        CreditEntry("x", "c", "grant", "other", 5, "USD", 0)
    with pytest.raises(CreditError, match="expires before"):
        grant("a", 5, at=10, expires=10)
    with pytest.raises(CreditError, match="no grant"):
        grants([CreditEntry("x", "c", "expiry", "ghost", -5, "USD", 0)])
