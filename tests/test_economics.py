"""Economics on real SQLite files: the report sums back to invoices, simulation never
writes, the same inputs give the same figures and charts, and the demo's charts open."""

from __future__ import annotations

import datetime as dt
import gc
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import pytest
from tests.conftest import REPO
from typer.testing import CliRunner

from payoff import charts, demo
from payoff.catalog import Catalog
from payoff.cli import app
from payoff.core.periods import to_us
from payoff.plans import load_plan, parse_plan
from payoff.service import billing, economics, ingest_lines
from payoff.store import open_store

PLANS = sorted((REPO / "examples" / "plans").glob("*.yaml"))
AS_OF = to_us(dt.datetime(2026, 12, 9, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("econ") / "ledger.db"
    store = open_store(path)
    demo._subscribe(store, 4, "2026-11")
    records = list(demo.generate(seed=3, customers=4, month="2026-11", scale=0.2))
    ingest_lines(store, demo.as_lines(records), catalog=Catalog())
    billing.run_invoices(store, "2026-11")
    store.close()
    return path


def test_report_revenue_sums_back_to_the_invoices_exactly(ledger: Path) -> None:
    store = open_store(ledger, create=False)
    invoiced = sum(Decimal(i["total"]) for i in billing.list_invoices(store, period="2026-11"))
    for by in economics.GROUPINGS:
        result = economics.report(store, "2026-11", by)
        assert Decimal(result["total"]["revenue"]) == invoiced
        assert sum(Decimal(row["revenue"]) for row in result["rows"]) == invoiced
    store.close()


def test_the_same_inputs_give_the_same_report_and_simulation(ledger: Path) -> None:
    store = open_store(ledger, create=False)
    plans = economics.load_plans(PLANS)
    scenarios = economics.parse_scenarios(list(demo.DEMO_SCENARIOS))
    first = economics.simulate(store, "2026-11", plans, scenarios, Catalog(), as_of_us=AS_OF)
    assert gc.isenabled()  # the simulation pauses the cycle collector, then restores it
    gc.disable()
    try:
        again = economics.simulate(store, "2026-11", plans, scenarios, Catalog(), as_of_us=AS_OF)
        assert not gc.isenabled()
    finally:
        gc.enable()
    assert first == again
    assert economics.report(store, "2026-11", "model", AS_OF) == economics.report(
        store, "2026-11", "model", AS_OF
    )
    store.close()


def test_simulation_never_changes_the_stored_ledger(ledger: Path) -> None:
    store = open_store(ledger, create=False)
    store.engine.dispose()  # type: ignore[attr-defined]
    before = {p.name: p.read_bytes() for p in ledger.parent.iterdir()}
    counts = store.counts()
    scenarios = economics.parse_scenarios(["all:cache_hit=1,batch=1,reasoning_cap=0,loops=3"])
    economics.simulate(store, "2026-11", economics.load_plans(PLANS), scenarios, Catalog())
    economics.report(store, "2026-11")
    assert store.counts() == counts
    store.close()
    assert {p.name: p.read_bytes() for p in ledger.parent.iterdir()} == before


def test_cli_report_and_simulate(ledger: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["--db", str(ledger), "report", "--period", "2026-11",
                                 "--by", "task_type", "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    args = ["--db", str(ledger), "simulate", "--period", "2026-11"]
    for plan in PLANS:
        args += ["--plan", str(plan)]
    chart = tmp_path / "sim.svg"
    result = runner.invoke(app, [*args, "--scenario", "c:cache_hit=0.9", "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    assert "Techniques" in result.output and chart.stat().st_size > 10_000
    bad = runner.invoke(app, [*args, "--scenario", "c:cache_hit=7"])
    assert bad.exit_code != 0


def test_the_demo_plans_are_the_example_plans() -> None:
    for name, text in demo.COMPARED_PLANS.items():
        assert (
            parse_plan(text, name)[0] == load_plan(REPO / "examples" / "plans" / f"{name}.yaml")[0]
        )


def test_the_demo_writes_valid_charts_and_the_same_svg_twice(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["--db", str(db), "demo", "--customers", "3"])
    assert result.exit_code == 0, result.output
    assert "Techniques" in result.output
    for suffix in ("revenue", "tokens", "risk"):
        path = tmp_path / f"demo-{suffix}.png"
        assert str(path) in result.output
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 10_000
    store = open_store(db, create=False)
    by_type = economics.report(store, "2026-11", "task_type", AS_OF)
    store.close()
    svgs = [charts.tokens_chart(by_type, tmp_path / f"t{i}.svg").read_bytes() for i in (1, 2)]
    assert svgs[0] == svgs[1] and len(svgs[0]) > 10_000
    ET.fromstring(svgs[0])  # parses as XML
