"""Sums never overflow: every aggregate of the store is exact past 2**63, and one customer that
cannot be rated never stops another customer's invoice."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select
from typer.testing import CliRunner

from api_support import prepare_ledger
from factories import REPO, jsonl, tool_usage, usage
from payoff.api import ServerConfig, create_app
from payoff.cli import app
from payoff.core.periods import Period
from payoff.service import invoices, plans
from payoff.store import exact_sums, open_store
from payoff.store.exact_sums import Sums, exact_rows
from payoff.store.protocol import Store

MAX_COST = "999999999.999999999"  # the largest `cost` a record may carry (docs/records.md)
MAX_COST_NANOUSD = 10**18 - 1
NOVEMBER = Period.month("2026-11")
BUDGET_PLAN = """id: budget
version: 1
currency: USD
charges:
  - name: tokens
    type: tokens
    model: per_unit
    unit_price: "0.001"
    per: 1000
    hidden_tokens_per_task_max: 1000
"""


def _at_the_largest_cost(count: int, customer: str = "acme", task: str = "t1") -> list[Any]:
    return [
        tool_usage(f"{customer}-max-{n}", customer=customer, task=task, cost=MAX_COST)
        for n in range(count)
    ]


# -- sums in parts, against Python's ---------------------------------------------------------


values = Table("numbers", MetaData(), Column("g", String), Column("x", Integer))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from("ab"), st.integers(-(2**60), 2**60)), min_size=1, max_size=40
    ),
    st.booleans(),
)
def test_sums_in_parts_equal_python_sums_past_64_bits(
    rows: list[tuple[str, int]], in_parts_always: bool
) -> None:
    engine = create_engine("sqlite://")
    values.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(values.insert(), [{"g": g, "x": x} for g, x in rows])
    exact_sums.IN_PARTS_ALWAYS = in_parts_always  # hypothesis runs many examples a test
    try:
        with engine.connect() as conn:
            found = exact_rows(
                conn,
                lambda sums: (
                    select(values.c.g, *sums.sum(values.c.x, 2**60))
                    .group_by(values.c.g)
                    .order_by(values.c.g)
                ),
            )
    finally:
        exact_sums.IN_PARTS_ALWAYS = False
    expected: dict[str, int] = {}
    for g, x in rows:
        expected[g] = expected.get(g, 0) + x
    assert found == sorted(expected.items())


def test_a_part_sum_stays_within_64_bits_for_every_row_a_sqlite_file_can_hold() -> None:
    # Fewer than 2**48 rows (2**32 pages of 2**16 bytes, a byte a row at least), each part
    # within 2**PART_BITS: the largest part sum is below 2**63.
    assert (2**48 - 1) * 2**exact_sums.PART_BITS < 2**63
    parts = Sums(split=True).sum(values.c.x, exact_sums.COST_BOUND)
    assert len(parts) * exact_sums.PART_BITS >= exact_sums.COST_BOUND.bit_length()


# -- every aggregate of the store --------------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["plainly-then-in-parts", "in-parts-always"])
def ledger(
    request: pytest.FixtureRequest, store: Store, ingest: Any, monkeypatch: pytest.MonkeyPatch
) -> Store:
    """Ten steps at the largest cost (their sum is past 2**63) beside ordinary ones."""
    report = ingest(
        *_at_the_largest_cost(10),
        usage("acme-llm", task="t1", visible=True, input_tokens=5000, output_tokens=700,
              reasoning_tokens=300, cost="0.5"),
        tool_usage("beta-tool", customer="beta", task="t2", cost="1.5"),
    )  # fmt: skip
    assert report.rejected == 0, report.problems
    monkeypatch.setattr(exact_sums, "IN_PARTS_ALWAYS", request.param)
    return store


ACME = 10 * MAX_COST_NANOUSD + 500_000_000
"""Nano-USD of acme's task: past 2**63."""
BETA = 1_500_000_000


def test_every_aggregate_of_the_store_is_exact_past_2_to_the_63(ledger: Store) -> None:
    assert ACME > 2**63
    tasks = {t.id: t for t in ledger.tasks()}
    acme = tasks["t1"]
    assert (acme.steps, acme.tokens_total, acme.tokens_visible) == (11, 5700, 400)
    assert (acme.cost_nanousd, acme.cost_visible_nanousd, tasks["t2"].cost_nanousd) == (
        ACME, 0, BETA
    )  # fmt: skip
    (untyped,) = ledger.task_types()
    assert (untyped.tasks, untyped.cost_nanousd, untyped.tokens_total) == (2, ACME + BETA, 5700)
    activity = {a.customer: a.cost_nanousd for a in ledger.task_activity(0, 2**62)}
    assert activity == {"acme": ACME, "beta": BETA}
    window = (NOVEMBER.start_us, NOVEMBER.end_us, 2**62)
    by_day = {(d.customer, d.day): d for d in ledger.usage_by_day(*window)}
    assert by_day[("acme", 2)][2:] == (5000, 0, 0, 700, ACME, 0)
    buckets = ledger.usage_buckets(*window)
    assert sum(b.cost_nanousd for b in buckets if b.customer == "acme") == ACME
    assert sum(b.reasoning for b in buckets) == 300
    budgets = ledger.hidden_over_budget(*window, ("input", "output"), 1000)
    found = sorted((b.customer, b.day, b.absorbed) for b in budgets)
    assert found == [("acme", 2, 5700 - 400 - 1000), ("beta", 2, 0)]


# -- what users run ----------------------------------------------------------------------------


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def cli_ledger(tmp_path: Path) -> Path:
    db, records = tmp_path / "l.db", tmp_path / "r.jsonl"
    records.write_bytes(
        jsonl(
            *_at_the_largest_cost(10),
            tool_usage("beta-1", customer="beta", task="t2", cost="1.5"),
        )
    )
    assert _cli("--db", str(db), "ingest", str(records)).exit_code == 0
    store = open_store(db)
    plans.apply_plan(store, REPO / "examples" / "plans" / "cost-plus.yaml")
    for customer in ("acme", "beta"):
        plans.subscribe(store, customer, "cost-plus", dt.date(2026, 10, 1), create=True)
    store.close()
    return db


def test_tasks_reports_invoices_and_simulations_are_exact_past_2_to_the_63(
    cli_ledger: Path,
) -> None:
    db = ["--db", str(cli_ledger)]
    tasks = _cli(*db, "tasks", "--json")
    assert tasks.exit_code == 0, tasks.output
    costs = {t["customer"]: t["cost_usd"] for t in json.loads(tasks.stdout)}
    assert costs == {"acme": "9999999999.999999990", "beta": "1.500000000"}
    report = _cli(*db, "report", "--period", "2026-11", "--json")
    assert report.exit_code == 0, report.output
    assert json.loads(report.stdout)["total"]["cost_usd"] == "10000000001.499999990"
    simulated = _cli(*db, "simulate", "--period", "2026-11", "--plan",
                     str(REPO / "examples" / "plans" / "per-task.yaml"), "--json")  # fmt: skip
    assert simulated.exit_code == 0, simulated.output
    baseline = json.loads(simulated.stdout)["scenarios"][0]["usage"]
    assert baseline["cost_usd"] == "10000000001.499999990"
    assert _cli(*db, "integrity", "--period", "2026-11", "--json").exit_code == 0
    run = _cli(*db, "invoice", "run", "--period", "2026-11", "--json")
    assert run.exit_code == 0, run.output
    fees = {d["customer"]: d["fees"][0] for d in json.loads(run.stdout)}
    # Cost plus 30 %: 9,999,999,999.99999999 USD x 1.3, to the last place.
    assert fees["acme"]["precise_amount"] == "12999999999.9999999870"
    assert fees["acme"]["amount"] == "13000000000.00"
    assert fees["beta"]["amount"] == "1.95"


def _finalized_earlier(store: Store, earlier: str, customer: str) -> str:
    """Draft every invoice of an earlier period, finalize `customer`'s: an as-of time just
    before that invoice's, at which `customer` alone cannot be rated."""
    drafts = invoices.run_invoices(store, earlier)
    assert len(drafts) >= 2
    invoices.act_on_invoice(store, f"{customer}-{earlier}", "finalize")
    as_of = dt.datetime.fromisoformat(drafts[0]["as_of"])
    return (as_of - dt.timedelta(microseconds=1)).isoformat().replace("+00:00", "Z")


def test_a_customer_that_cannot_be_rated_never_stops_the_others_invoices(
    cli_ledger: Path,
) -> None:
    store = open_store(cli_ledger)
    before_acme = _finalized_earlier(store, "2026-10", "acme")
    store.close()
    run = _cli("--db", str(cli_ledger), "invoice", "run", "--period", "2026-11",
               "--as-of", before_acme, "--json")  # fmt: skip
    assert run.exit_code == 1, run.output
    assert [d["customer"] for d in json.loads(run.stdout)] == ["beta"]
    assert "error: acme not invoiced: invoice acme-2026-10 was rated as of" in run.stderr
    assert "Traceback" not in run.output
    store = open_store(cli_ledger)
    try:
        drafted = store.list_invoices(None, "2026-11")
        assert [(i.customer, i.status) for i in drafted] == [("beta", "draft")]
        as_of_us = int(dt.datetime.fromisoformat(before_acme).timestamp() * 10**6)
        with pytest.raises(invoices.InvoiceRunIncomplete, match="acme") as refused:
            invoices.run_invoices(store, "2026-11", as_of_us=as_of_us)
        assert [d["customer"] for d in refused.value.run.drafts] == ["beta"]
    finally:
        store.close()


def test_over_http_an_invoice_run_names_the_customer_it_cannot_rate(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    keys = prepare_ledger(db)  # acme and globex on one plan, from 60 days ago
    store = open_store(db)
    this_month = dt.datetime.now(dt.UTC).date().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).strftime("%Y-%m")
    before_acme = _finalized_earlier(store, last_month, "acme")
    store.close()
    run = {"period": this_month.strftime("%Y-%m"), "as_of": before_acme}
    with TestClient(create_app(ServerConfig(str(db), builders=0))) as client:
        answer = client.post("/v1/invoice-runs", json=run, headers=keys.header(keys.admin))
        assert answer.status_code == 422, answer.text
        assert "acme: invoice acme-" in answer.json()["detail"]
        listed = client.get(
            "/v1/invoices", params={"period": run["period"]}, headers=keys.header(keys.admin)
        ).json()["items"]
    assert [i["customer"] for i in listed] == ["globex"]
