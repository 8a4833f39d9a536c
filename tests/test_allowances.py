"""Usage limits within a subscription: allowances that reset every N hours, overage beyond."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from factories import REPO, usage
from payoff.core.allowances import Limit, walk, windows_of
from payoff.plan_files import PlanError, parse_plan
from payoff.service import IngestReport, invoices, plans
from payoff.service.economics import EconomicsError, load_plans
from payoff.service.verify import verify_ledger
from payoff.store.protocol import Store

MARKET = REPO / "examples" / "plans" / "market"
HOURS = 30 * 24


@given(st.integers(1, 400), st.integers(0, HOURS - 1), st.data())
def test_windows_partition_the_period(every: int, first: int, data: st.DataObject) -> None:
    last = data.draw(st.integers(first + 1, HOURS))
    windows = windows_of(every, first, last)
    assert windows[0][0] == first and windows[-1][1] == last
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert end == start  # contiguous: every hour in exactly one window
    for start, end in windows:
        assert start < end and start // every == (end - 1) // every  # inside one fixed window


limits = st.lists(
    st.builds(Limit, st.integers(1, 200), st.integers(0, 10_000)),
    max_size=3,
    unique_by=lambda limit: limit.every_hours,
)
hourly = st.lists(st.tuples(st.integers(0, HOURS - 1), st.integers(0, 5_000)), max_size=40)


@given(limits, hourly)
def test_overage_and_allowances_account_for_every_unit(
    chosen: list[Limit], used: list[tuple[int, int]]
) -> None:
    walked = walk(chosen, used)
    total = sum(units for _, units in used)
    assert 0 <= walked.overage <= total
    for limit in chosen:
        own = [w for w in walked.windows if w.every_hours == limit.every_hours]
        assert sum(w.used for w in own) == total
        assert sum(w.included for w in own) == total - walked.overage
        assert all(0 <= w.included <= min(w.used, limit.included) for w in own)
    if not chosen:
        assert walked.overage == 0


def test_limits_are_checked() -> None:
    plan = (MARKET / "rolling-windows.yaml").read_text()
    with pytest.raises(PlanError, match="one limit per window length"):
        parse_plan(plan.replace("every_hours: 168", "every_hours: 5"))
    with pytest.raises(PlanError, match=r"limits\[0\].every_hours: whole hours from 1"):
        parse_plan(plan.replace("every_hours: 5\n", "every_hours: 0\n"))
    with pytest.raises(PlanError, match="limits: not a field of subscription charges"):
        parse_plan(plan.replace("    description: Premium subscription\n",
                                "    limits: [{every_hours: 1, included: 1}]\n"))  # fmt: skip
    # Windows walk every record's hourly usage: a subset (filters) or another unit is refused.
    limited = "    limits:\n"
    assert limited in plan
    for extra in ("filters: {model: gpt-5*}", "compute: gpu_seconds", 'markup: "0.2"'):
        with pytest.raises(PlanError, match="without a reasoning budget, markup, filters or"):
            parse_plan(plan.replace(limited, f"    {extra}\n{limited}"))


def _at(hour: int) -> str:
    moment = dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(hours=hour, minutes=7)
    return moment.isoformat().replace("+00:00", "Z")


# (hour of November, tokens): the worked example of docs/plans.md.
USE = [(1, 1_500_000), (3, 1_000_000), (6, 1_800_000)]
USE += [(h, 2_000_000) for h in (24, 48, 72, 96, 120, 144, 150, 155, 160)]
USE += [(170, 2_500_000)]


def test_the_rolling_window_market_plan_bills_overage_as_computed_by_hand(
    store: Store, ingest: Callable[..., IngestReport]
) -> None:
    records: list[dict[str, Any]] = [
        usage(f"e{n}", time=_at(hour), input_tokens=tokens, output_tokens=0, task=f"t{n}")
        for n, (hour, tokens) in enumerate(USE)
    ]
    assert ingest(*records).clean
    plans.apply_plan(store, MARKET / "rolling-windows.yaml")
    plans.subscribe(store, "acme", "market-rolling-windows", dt.date(2026, 11, 1))
    (document,) = invoices.run_invoices(store, "2026-11", as_of_us=invoices.now_us())
    # By hand, window by window (5-hour allowance 2M, weekly 20M):
    # hours 0-4: 1.5M + 1.0M = 2.5M used, 2.0M included, 0.5M over;
    # hours 5-9: 1.8M included; the week so far 3.8M.
    # 8 more 2M hours in their own 5-hour windows: 19.8M of the week included;
    # hour 160: 2M, of which 0.2M fits the week, 1.8M over.
    # week 2, hour 170: 2.5M, 2M included, 0.5M over.
    # Overage 0.5M + 1.8M + 0.5M = 2.8M x $4.00 per million = $11.20; with $100.00, $111.20.
    subscription, overage = document["fees"]
    assert (subscription["amount"], overage["units"], overage["amount"]) == (
        "100.00",
        "2800000",
        "11.20",
    )
    assert document["total"] == "111.20"
    windows = overage["usage_windows"]
    assert windows[0] == {"every_hours": 5, "start_hour": 0, "used": 2_500_000,
                          "included": 2_000_000}  # fmt: skip
    weekly = [w for w in windows if w["every_hours"] == 168]
    assert weekly == [
        {"every_hours": 168, "start_hour": 0, "used": 22_300_000, "included": 20_000_000},
        {"every_hours": 168, "start_hour": 168, "used": 2_500_000, "included": 2_000_000},
    ]
    assert len(windows) == len(USE) - 1 + 2  # hours 1 and 3 share a 5-hour window
    invoices.act_on_invoice(store, document["id"], "finalize")
    result = verify_ledger(store)
    assert [str(m) for m in result.mismatches] == [] and result.invoices == 1
    assert Decimal(overage["precise_amount"]) == Decimal("11.2")


def test_simulate_refuses_a_plan_it_cannot_rate_rather_than_bill_no_overage() -> None:
    with pytest.raises(EconomicsError, match="charge 'overage' limits usage by window"):
        load_plans([MARKET / "rolling-windows.yaml"])
