"""Billing edge cases: plan changes, late usage, voids, credits, proration, currencies."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from payoff.service import ingest_lines, invoices, plans
from payoff.store import open_store
from payoff.store.protocol import Store

NOV = "2026-11"


def plan_file(tmp_path: Path, name: str, body: str, currency: str = "USD") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"id: {name}\nversion: 1\ncurrency: {currency}\n{body}")
    return path


def step(id: str, time: str, customer: str = "c", tokens: int = 1000, **extra: Any) -> bytes:
    record = {
        "id": id,
        "time": time,
        "customer": customer,
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": tokens,
        "output_tokens": 0,
        **extra,
    }
    return msgspec.json.encode(record)


def ingest(store: Store, *lines: bytes) -> None:
    report = ingest_lines(store, list(enumerate(lines, start=1)), workers=0)
    assert report.clean, report.problems


def run(store: Store, period: str, customer: str = "c") -> dict[str, Any]:
    (document,) = [d for d in invoices.run_invoices(store, period) if d["customer"] == customer]
    return document


def late(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (f["late_period"], f["charge"], f["amount"]) for f in document["fees"] if "late_period" in f
    ]


TOKENS = "charges:\n  - {name: tok, type: tokens, model: per_unit, unit_price: '2.00', per: 1000}\n"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(tmp_path / "l.db")


def test_late_usage_after_a_plan_change_mid_period(store: Store, tmp_path: Path) -> None:
    sub = "  - {name: platform, type: subscription, amount: '300.00'}\n"
    plans.apply_plan(store, plan_file(tmp_path, "a", TOKENS + sub))
    plans.apply_plan(store, plan_file(tmp_path, "b", TOKENS + sub))
    plans.subscribe(store, "c", "a", dt.date(2026, 11, 1))
    plans.subscribe(store, "c", "b", dt.date(2026, 11, 16))
    ingest(store, step("e1", "2026-11-05T00:00:00Z"), step("e2", "2026-11-20T00:00:00Z"))
    november = run(store, NOV)
    assert november["total"] == "304.00"  # 150 + 150 + 2 + 2
    invoices.act_on_invoice(store, november["id"], "finalize")
    ingest(store, step("e3", "2026-11-25T00:00:00Z"))  # 1,000 late tokens: 2.00
    assert late(run(store, "2026-12")) == [(NOV, "tok", "2.00")]


def test_void_and_rerun_does_not_bill_late_lines_twice(store: Store, tmp_path: Path) -> None:
    plans.apply_plan(store, plan_file(tmp_path, "a", TOKENS))
    plans.subscribe(store, "c", "a", dt.date(2026, 10, 1))
    ingest(store, step("e1", "2026-10-05T00:00:00Z"))
    invoices.act_on_invoice(store, run(store, "2026-10")["id"], "finalize")
    ingest(store, step("e2", "2026-10-06T00:00:00Z"))
    november = run(store, NOV)
    assert late(november) == [("2026-10", "tok", "2.00")]
    invoices.act_on_invoice(store, november["id"], "finalize")
    with pytest.raises(plans.BillingError, match="bills late lines of 2026-10"):
        invoices.act_on_invoice(store, "c-2026-10", "void")


def test_a_volume_drop_on_late_usage_is_a_credit(store: Store, tmp_path: Path) -> None:
    volume = (
        "charges:\n  - {name: v, type: tokens, model: volume, per: 1, tiers: "
        "[{up_to: 1000, unit_price: '0.30'}, {up_to: null, unit_price: '0.10'}]}\n"
    )
    plans.apply_plan(store, plan_file(tmp_path, "vol", volume))
    plans.subscribe(store, "c", "vol", dt.date(2026, 10, 1))
    ingest(store, step("e1", "2026-10-05T00:00:00Z", tokens=1000))
    october = run(store, "2026-10")
    assert october["total"] == "300.00"
    invoices.act_on_invoice(store, october["id"], "finalize")
    ingest(store, step("e2", "2026-10-06T00:00:00Z", tokens=1))
    november = run(store, NOV)
    assert late(november) == [("2026-10", "v", "-199.90")]  # 1,001 x 0.10 = 100.10
    assert november["total"] == "-199.90"  # a credit owed to the customer


def test_late_lines_keep_their_own_periods_minimum_and_cap(store: Store, tmp_path: Path) -> None:
    capped = "maximum: '5.00'\nminimum: '1.00'\n" + TOKENS
    plans.apply_plan(store, plan_file(tmp_path, "cap", capped))
    plans.subscribe(store, "c", "cap", dt.date(2026, 10, 1))
    ingest(store, step("e1", "2026-10-05T00:00:00Z", tokens=2000))  # 4.00
    invoices.act_on_invoice(store, run(store, "2026-10")["id"], "finalize")
    ingest(
        store,
        step("e2", "2026-10-06T00:00:00Z", tokens=2000),  # October: 8.00, capped at 5
        step("e3", "2026-11-02T00:00:00Z", tokens=1000),
    )  # November: 2.00
    november = run(store, NOV)
    assert sorted(late(november)) == [
        ("2026-10", "maximum_discount", "-3.00"),
        ("2026-10", "tok", "4.00"),
    ]
    assert (november["minimum_true_up"], november["maximum_discount"]) == ("0.00", "0.00")
    assert november["total"] == "3.00"  # 2.00 own + 1.00 late (4.00 less 3.00 over the cap)


def test_count_all_bills_a_task_once_when_it_ends(store: Store, tmp_path: Path) -> None:
    tasks = (
        "charges:\n  - {name: runs, type: task, task_type: '*', count: all, model: "
        "per_unit, unit_price: '1.00'}\n"
    )
    plans.apply_plan(store, plan_file(tmp_path, "t", tasks))
    plans.subscribe(store, "c", "t", dt.date(2026, 10, 1))
    ingest(store, step("e1", "2026-10-28T00:00:00Z", task="t1"))
    assert run(store, "2026-10")["total"] == "0.00"  # still open
    ingest(
        store,
        msgspec.json.encode(
            {
                "record": "task",
                "id": "t1",
                "customer": "c",
                "status": "failed",
                "time": "2026-11-01T00:00:00Z",
            }
        ),
    )
    assert run(store, NOV)["total"] == "1.00"


def test_proration_multiplies_before_dividing(store: Store, tmp_path: Path) -> None:
    sub = "charges:\n  - {name: platform, type: subscription, amount: '19.95'}\n"
    plans.apply_plan(store, plan_file(tmp_path, "s", sub))
    plans.subscribe(store, "c", "s", dt.date(2026, 11, 24))  # 7 of November's 30 days
    (line,) = run(store, NOV)["fees"]
    assert (line["precise_amount"], line["amount"]) == ("4.655", "4.66")  # half-even of 4.655


def test_proration_at_month_edges(store: Store, tmp_path: Path) -> None:
    sub = "charges:\n  - {name: platform, type: subscription, amount: '30.00'}\n"
    plans.apply_plan(store, plan_file(tmp_path, "s", sub))
    plans.subscribe(store, "c", "s", dt.date(2026, 11, 30))
    assert run(store, NOV)["fees"][0]["amount"] == "1.00"
    plans.unsubscribe(store, "c", dt.date(2026, 12, 11))
    assert run(store, "2026-12")["fees"][0]["amount"] == "9.68"  # 10 of 31 days
    assert [d["customer"] for d in invoices.run_invoices(store, "2027-01")] == []


def test_a_customer_keeps_one_currency(store: Store, tmp_path: Path) -> None:
    plans.apply_plan(store, plan_file(tmp_path, "yen", TOKENS, currency="JPY"))
    plans.apply_plan(store, plan_file(tmp_path, "usd", TOKENS))
    plans.subscribe(store, "c", "yen", dt.date(2026, 11, 1))
    with pytest.raises(plans.BillingError, match="billed in JPY"):
        plans.subscribe(store, "c", "usd", dt.date(2026, 12, 1))


def test_jpy_invoices_round_to_whole_yen(store: Store, tmp_path: Path) -> None:
    yen = "charges:\n  - {name: tok, type: tokens, model: per_unit, unit_price: '2.5', per: 1000}\n"
    plans.apply_plan(store, plan_file(tmp_path, "yen", yen, currency="JPY"))
    plans.subscribe(store, "c", "yen", dt.date(2026, 11, 1))
    ingest(store, step("e1", "2026-11-05T00:00:00Z", tokens=1000))
    document = run(store, NOV)
    assert (document["fees"][0]["amount"], document["total"]) == ("2", "2")  # 2.5 -> 2


def test_no_subscription_change_inside_a_finalized_period(store: Store, tmp_path: Path) -> None:
    plans.apply_plan(store, plan_file(tmp_path, "a", TOKENS))
    plans.subscribe(store, "c", "a", dt.date(2026, 10, 1))
    invoices.act_on_invoice(store, run(store, "2026-10")["id"], "finalize")
    with pytest.raises(plans.BillingError, match="2026-10 is finalized"):
        plans.subscribe(store, "c", "a", dt.date(2026, 10, 20))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "charges:\n  - {name: o, type: outcome, outcome: x, markup: '0.2', model: per_unit, "
            "unit_price: '1'}\n",
            "markup: not a field of outcome charges",
        ),
        (
            "charges:\n  - {name: t, type: tokens, markup: '0.2', hidden_tokens_per_task_max: 5}\n",
            "hidden_tokens_per_task_max: a cost-plus charge",
        ),
        ("maximum: '99.995'\n" + TOKENS, "maximum: 99.995 is finer than a USD minor unit"),
        (
            "charges:\n  - {name: t, type: task, task_type: x, model: per_unit, "
            "unit_price: .nan}\n",
            "unit_price: a finite number below",
        ),
        (
            "charges:\n  - {name: s, type: subscription, amount: '1', model: per_unit}\n",
            "model: not a field of subscription charges",
        ),
    ],
)
def test_plans_refuse_what_does_not_belong(tmp_path: Path, body: str, message: str) -> None:
    from payoff.plan_files import PlanError, load_plan

    with pytest.raises(PlanError, match=message.replace("(", r"\(")):
        load_plan(plan_file(tmp_path, "bad", body))


def test_cost_plus_line_shows_unpriced_steps(store: Store, tmp_path: Path) -> None:
    plans.apply_plan(
        store, plan_file(tmp_path, "cp", "charges:\n  - {name: u, type: tokens, markup: '0.20'}\n")
    )
    plans.subscribe(store, "c", "cp", dt.date(2026, 11, 1))
    ingest(
        store,
        step("e1", "2026-11-05T00:00:00Z"),
        step("e2", "2026-11-05T00:00:00Z", model="mystery-model"),
    )
    (line,) = run(store, NOV)["fees"]
    assert line["unpriced_steps"] == 1
    assert Decimal(line["units"]) == Decimal("0.0025")  # gpt-4o: 1,000 input at 2.50/MTok


def test_a_stale_draft_cannot_be_finalized(store: Store, tmp_path: Path) -> None:
    plans.apply_plan(store, plan_file(tmp_path, "a", TOKENS))
    plans.subscribe(store, "c", "a", dt.date(2026, 10, 1))
    ingest(store, step("e1", "2026-10-05T00:00:00Z"))
    invoices.act_on_invoice(store, run(store, "2026-10")["id"], "finalize")
    ingest(store, step("e2", "2026-10-06T00:00:00Z"))
    november, december = run(store, NOV), run(store, "2026-12")
    assert late(november) == late(december) == [("2026-10", "tok", "2.00")]
    invoices.act_on_invoice(store, november["id"], "finalize")
    with pytest.raises(plans.BillingError, match="run the period again"):
        invoices.act_on_invoice(store, december["id"], "finalize")
    assert late(run(store, "2026-12")) == []  # re-run: October's late usage is billed once


def test_subscriptions_never_overlap(store: Store, tmp_path: Path) -> None:
    plans.apply_plan(store, plan_file(tmp_path, "a", TOKENS))
    plans.apply_plan(store, plan_file(tmp_path, "b", TOKENS))
    plans.subscribe(store, "c", "a", dt.date(2026, 12, 1))
    plans.unsubscribe(store, "c", dt.date(2026, 12, 21))
    plans.subscribe(store, "c", "b", dt.date(2026, 12, 11))
    ingest(store, step("e1", "2026-12-15T00:00:00Z"))
    assert run(store, "2026-12")["total"] == "2.00"  # billed once, under b


def test_changes_cannot_reach_back_into_billed_periods(store: Store, tmp_path: Path) -> None:
    plans.apply_plan(store, plan_file(tmp_path, "a", TOKENS))
    plans.subscribe(store, "c", "a", dt.date(2026, 10, 1))
    invoices.act_on_invoice(store, run(store, NOV)["id"], "finalize")
    with pytest.raises(plans.BillingError, match="2026-11 is finalized"):
        plans.subscribe(store, "c", "a", dt.date(2026, 10, 20))
    with pytest.raises(plans.BillingError, match="2026-11 is finalized"):
        plans.unsubscribe(store, "c", dt.date(2026, 10, 20))


def test_a_task_that_ends_later_is_taken_out_of_its_billed_period(
    store: Store, tmp_path: Path
) -> None:
    tasks = (
        "charges:\n  - {name: runs, type: task, task_type: '*', count: all, model: "
        "per_unit, unit_price: '1.00'}\n"
    )
    plans.apply_plan(store, plan_file(tmp_path, "t", tasks))
    plans.subscribe(store, "c", "t", dt.date(2026, 10, 1))

    def status(value: str, time: str) -> bytes:
        return msgspec.json.encode(
            {"record": "task", "id": "t1", "customer": "c", "status": value, "time": time}
        )

    ingest(
        store,
        step("e1", "2026-10-28T00:00:00Z", task="t1"),
        status("failed", "2026-10-29T00:00:00Z"),
    )
    october = run(store, "2026-10")
    assert october["total"] == "1.00"
    invoices.act_on_invoice(store, october["id"], "finalize")
    ingest(store, status("completed", "2026-11-02T00:00:00Z"))  # it ended, later, in November
    november = run(store, NOV)
    assert late(november) == [("2026-10", "runs", "-1.00")]
    assert november["total"] == "0.00"  # billed in November, credited in October: once in all


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("charges:\n  - {name: s, type: subscription, amount: .nan}\n", "amount: a finite number"),
        ("charges:\n  - {name: u, type: tokens, markup: .inf}\n", "markup: a finite number"),
        ("charges:\n  - {name: s, type: subscription, amount: 010}\n", "plain decimal"),
        (
            "charges:\n  - {name: minimum_true_up, type: subscription, amount: '1'}\n",
            "names invoice adjustment lines",
        ),
        (
            "charges:\n  - {name: t, type: task, task_type: x, model: per_unit, "
            "unit_price: '1e40'}\n",
            "a finite number below",
        ),
    ],
)
def test_plans_refuse_unusable_numbers(tmp_path: Path, body: str, message: str) -> None:
    from payoff.plan_files import PlanError, load_plan

    with pytest.raises(PlanError, match=message):
        load_plan(plan_file(tmp_path, "bad", body))


def test_the_store_stamps_records_inside_its_write(store: Store) -> None:
    from payoff.store.protocol import WriteBatch

    stamps = iter([111, 222])
    batch = WriteBatch()
    from payoff.catalog import Catalog
    from payoff.records import decode_record
    from payoff.rows import RowBuilder

    RowBuilder(Catalog()).add(batch, decode_record(step("e1", "2026-11-05T00:00:00Z")), 1)
    store.write(batch, lambda: next(stamps))
    assert store.committed_now_us(lambda: next(stamps)) == 222
    import sqlite3

    with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
        assert conn.execute("SELECT received_at_us FROM events").fetchone() == (111,)
