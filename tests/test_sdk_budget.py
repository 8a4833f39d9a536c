"""BudgetBook alone: no ledger, no network, no clock; spend is integers, the boundary exact."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from payoff.core.errors import BudgetExceeded
from payoff.core.periods import Period
from payoff.sdk.budget import (
    COST,
    CUSTOMER_COST,
    HIDDEN_TOKENS,
    Budget,
    BudgetBook,
    Step,
    TaskSpend,
    month_of,
    parse_usd_argument,
)

JANUARY, FEBRUARY = "2026-01", "2026-02"


class Ledger:
    """What a ledger holds per (customer, month label), and how often it was asked."""

    def __init__(self, spend_nanousd: dict[tuple[str, str], int] | None = None) -> None:
        self.spend_nanousd = spend_nanousd or {}
        self.asked: list[tuple[str, str]] = []

    def period_spend(self, customer: str, period: Period) -> int:
        self.asked.append((customer, period.label))
        return self.spend_nanousd.get((customer, period.label), 0)


def step(*, hidden: int = 0, visible: int = 0, cost_nanousd: int | None = 0) -> Step:
    return Step(hidden + visible, visible, cost_nanousd)


def run(
    book: BudgetBook, spend: TaskSpend, one: Step, period: str = JANUARY
) -> tuple[tuple[str, ...], BudgetExceeded | None]:
    """One step as a Task takes it: the crossing, then (record emitted) the count."""
    crossing = book.crossing(spend, one, period)
    return crossing.crossed, book.add(spend, one, crossing)


@pytest.mark.parametrize(
    ("spent", "over"),
    [(99, False), (100, False), (101, True)],
)
def test_a_budget_is_exceeded_only_strictly_above_its_limit(spent: int, over: bool) -> None:
    book = BudgetBook(Ledger().period_spend)
    spend = TaskSpend("t", "acme", Budget(hidden_tokens=100, enforce=True))
    crossed, refusal = run(book, spend, step(hidden=spent))
    assert crossed == ((HIDDEN_TOKENS,) if over else ())
    assert refusal is None  # the step that crosses is recorded and not refused
    assert book.remaining(spend, JANUARY).hidden_tokens == 100 - spent
    assert (book.refusal(spend, JANUARY) is not None) is over


def test_visible_tokens_do_not_count_against_a_hidden_budget() -> None:
    book = BudgetBook(Ledger().period_spend)
    spend = TaskSpend("t", "acme", Budget(hidden_tokens=10))
    assert run(book, spend, step(hidden=10, visible=5_000)) == ((), None)
    assert (spend.tokens_total, spend.tokens_visible, spend.tokens_hidden) == (5_010, 5_000, 10)


def test_a_cost_budget_counts_whole_nano_usd_and_unpriced_steps_as_unknown() -> None:
    book = BudgetBook(Ledger().period_spend)
    spend = TaskSpend("t", "acme", Budget(cost="0.000000010", enforce=True))
    assert spend.budget.cost_nanousd == 10
    assert run(book, spend, step(cost_nanousd=10)) == ((), None)
    assert run(book, spend, step(cost_nanousd=None)) == ((), None)
    assert (spend.cost_nanousd, spend.unpriced_steps, spend.steps) == (10, 1, 2)
    assert run(book, spend, step(cost_nanousd=1)) == ((COST,), None)
    assert book.remaining(spend, JANUARY).cost == "-0.000000001"
    crossed, refusal = run(book, spend, step(cost_nanousd=2))
    assert crossed == ()
    assert refusal is not None
    assert (refusal.budget, refusal.limit, refusal.spent) == (COST, 10, 13)


def test_an_unenforced_budget_flags_the_task_once_and_never_refuses() -> None:
    book = BudgetBook(Ledger().period_spend)
    spend = TaskSpend("t", "acme", Budget(hidden_tokens=1, cost="0.000000001"))
    assert run(book, spend, step(hidden=2, cost_nanousd=2)) == ((HIDDEN_TOKENS, COST), None)
    assert run(book, spend, step(hidden=2, cost_nanousd=2)) == ((), None)
    assert spend.flags == [HIDDEN_TOKENS, COST]
    assert book.refusal(spend, JANUARY) is None
    assert book.remaining(spend, JANUARY).exceeded == (HIDDEN_TOKENS, COST)


def test_an_enforced_budget_refuses_every_step_after_the_one_that_crossed() -> None:
    book = BudgetBook(Ledger().period_spend)
    spend = TaskSpend("t", "acme", Budget(hidden_tokens=5, enforce=True))
    assert run(book, spend, step(hidden=6)) == ((HIDDEN_TOKENS,), None)
    for expected_spent in (7, 8):
        _, refusal = run(book, spend, step(hidden=1))
        assert refusal is not None
        assert refusal.spent == expected_spent
    assert spend.steps == 3  # refused steps are recorded all the same


def test_a_customer_budget_adds_this_books_spend_to_the_ledgers_per_utc_month() -> None:
    ledger = Ledger({("acme", JANUARY): 90, ("acme", FEBRUARY): 5})
    book = BudgetBook(ledger.period_spend)
    book.set_customer_budget("acme", 100, enforce=True)
    first = TaskSpend("t1", "acme", Budget())
    second = TaskSpend("t2", "acme", Budget())
    assert run(book, first, step(cost_nanousd=10)) == ((), None)  # 100: at the limit
    assert run(book, second, step(cost_nanousd=1), FEBRUARY) == ((), None)  # another month
    assert run(book, second, step(cost_nanousd=1)) == ((CUSTOMER_COST,), None)
    assert book.customer_spend_nanousd("acme", JANUARY) == 101
    assert book.customer_spend_nanousd("acme", FEBRUARY) == 6
    refusal = book.refusal(first, JANUARY)  # any task of the customer is refused now
    assert refusal is not None
    assert (refusal.budget, refusal.limit, refusal.spent) == (CUSTOMER_COST, 100, 101)
    assert book.refusal(first, FEBRUARY) is None
    assert book.remaining(first, JANUARY).customer_cost == "-0.000000001"
    assert sorted(ledger.asked) == [("acme", JANUARY), ("acme", FEBRUARY)]  # once per month


def test_a_customer_without_a_budget_never_asks_the_ledger() -> None:
    ledger = Ledger({("acme", JANUARY): 10**12})
    book = BudgetBook(ledger.period_spend)
    spend = TaskSpend("t", "acme", Budget())
    assert run(book, spend, step(cost_nanousd=10**9)) == ((), None)
    assert book.remaining(spend, JANUARY).customer_cost_nanousd is None
    assert ledger.asked == []


def test_a_moment_falls_in_its_utc_month() -> None:
    late_evening = dt.datetime(2026, 1, 31, 22, 30, tzinfo=dt.timezone(dt.timedelta(hours=-2)))
    assert month_of(late_evening) == FEBRUARY
    assert month_of(dt.datetime(2026, 2, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))) == (
        JANUARY
    )


@pytest.mark.parametrize(
    ("amount", "nanousd"), [("0.004", 4_000_000), (Decimal("1.000000001"), 1_000_000_001)]
)
def test_a_usd_argument_is_parsed_exactly(amount: str | Decimal, nanousd: int) -> None:
    assert parse_usd_argument(amount, "cost") == nanousd


def test_a_usd_argument_refuses_float_and_rounding() -> None:
    with pytest.raises(TypeError, match="cost is USD as a decimal string"):
        parse_usd_argument(0.1, "cost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^cost: "):
        parse_usd_argument("0.0000000001", "cost")
