"""Economics on real SQLite files: the report sums back to invoices, simulation never
writes, the same inputs give the same figures and charts, and the demo's charts open."""

from __future__ import annotations

import datetime as dt
import gc
import json
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path

import matplotlib.image
import numpy
import pytest
from typer.testing import CliRunner

from factories import REPO
from payoff import charts, demo
from payoff.catalog import Catalog
from payoff.cli import app
from payoff.core.periods import to_us
from payoff.plan_files import load_plan, parse_plan
from payoff.service import economics, ingest_lines, invoices, plans
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
    invoices.run_invoices(store, "2026-11")
    store.close()
    return path


def test_report_revenue_sums_back_to_the_invoices_exactly(ledger: Path) -> None:
    store = open_store(ledger, create=False)
    invoiced = sum(Decimal(i["total"]) for i in invoices.list_invoices(store, period="2026-11"))
    for by in economics.GROUPINGS:
        result = economics.report(store, "2026-11", by)
        assert Decimal(result["total"]["revenue_usd"]) == invoiced
        assert sum(Decimal(row["revenue_usd"]) for row in result["rows"]) == invoiced
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
    # The CLI names its option; the service's message (also the API's) names none.
    month = runner.invoke(app, ["--db", str(ledger), "report", "--period", "2026-13"])
    assert month.exit_code == 2 and "--period" in month.output, month.output
    assert "a period is YYYY-MM, got '2026-13'" in month.output


def test_the_demo_plans_are_the_example_plans() -> None:
    for name, text in demo.COMPARED_PLANS.items():
        assert (
            parse_plan(text, name)[0] == load_plan(REPO / "examples" / "plans" / f"{name}.yaml")[0]
        )


@pytest.mark.slow
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
        pixels = matplotlib.image.imread(path)  # decodes the whole image
        height, width = pixels.shape[:2]
        assert width >= 600 and height >= 300
        assert len(numpy.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)) > 10  # drawn
    store = open_store(db, create=False)
    by_type = economics.report(store, "2026-11", "task_type", AS_OF)
    store.close()
    svgs = [charts.tokens_chart(by_type, tmp_path / f"t{i}.svg").read_bytes() for i in (1, 2)]
    assert svgs[0] == svgs[1] and len(svgs[0]) > 10_000
    ET.fromstring(svgs[0])  # parses as XML


MID_PERIOD_PLANS = {
    "pa": """
id: pa
version: 1
currency: USD
minimum: "20.00"
charges:
  - {name: main, type: task, task_type: x, count: all, model: volume, tiers: [{up_to: 1, unit_price: "2.00"}, {up_to: null, unit_price: "1.50"}]}
  - {name: toks, type: tokens, classes: [output], model: graduated, per: 1000, hidden_tokens_per_task_max: 1000, tiers: [{up_to: 2, unit_price: "0.10"}, {up_to: null, unit_price: "0.05", flat: "1.00"}]}
  - {name: sub, type: subscription, amount: "10.00"}
""",  # noqa: E501
    "pb": """
id: pb
version: 1
currency: USD
maximum: "30.00"
charges:
  - {name: main, type: outcome, outcome: ok, model: package, package_size: 2, package_price: "3.00"}
  - {name: pct, type: outcome, outcome: sale, model: percentage, rate: "0.1", min_per_event: "0.50"}
  - {name: sub, type: subscription, amount: "10.00"}
""",
}
MID_PERIOD_PRICES = """
prices:
  - {provider: lab, model: m1, batch: false, input_mtok: "1.00", cache_read_mtok: "0.10", output_mtok: "4.00"}
"""  # noqa: E501


def _mid_period_lines() -> list[tuple[int, bytes]]:
    usage = [
        ("x1", "x", "03", 5000, 3000, 2500, False), ("x1", "x", "03", 1000, 500, 0, True),
        ("x2", "x", "05", 2000, 800, 0, True), ("y1", "y", "20", 2000, 700, 0, True),
        ("y2", "y", "21", 2000, 600, 0, True), ("y3", "y", "22", 2000, 400, 0, True),
    ]  # fmt: skip
    records: list[dict[str, object]] = []
    for n, (task, kind, day, inp, out, reasoning, visible) in enumerate(usage):
        records.append({"id": f"u{n}", "time": f"2026-11-{day}T10:0{n}:00Z", "customer": "c1",
                        "task": task, "task_type": kind, "provider": "lab", "model": "m1",
                        "input_tokens": inp, "output_tokens": out,
                        "reasoning_tokens": reasoning, "visible": visible})  # fmt: skip
    ends = {"x1": ("03", "failed"), "x2": ("05", "completed"), "y1": ("20", "completed"),
            "y2": ("21", "completed"), "y3": ("22", "completed")}  # fmt: skip
    for task, (day, status) in ends.items():
        records.append({"record": "task", "id": task, "customer": "c1", "type": task[0],
                        "status": status, "time": f"2026-11-{day}T11:00:00Z"})  # fmt: skip
    outcomes = [("x2", "ok", None, "05"), ("y1", "ok", None, "20"), ("y1", "sale", "100.00", "20"),
                ("y2", "ok", None, "21"), ("y3", "sale", "3.00", "22")]  # fmt: skip
    for n, (task, kind, value, day) in enumerate(outcomes):
        record = {"record": "outcome", "id": f"o{n}", "task": task, "customer": "c1",
                  "type": kind, "time": f"2026-11-{day}T12:00:00Z"}  # fmt: skip
        records.append(record if value is None else {**record, "value": value})
    return list(demo.as_lines(records))  # type: ignore[arg-type]


def test_a_mid_period_plan_change_attributes_each_window_with_its_own_plan(
    tmp_path: Path,
) -> None:
    # Window 1 (days 1-15, pa): x1 and x2. main 3.00 by task (1.50 each); toks 1.22 by
    # output over the budget's absorption (x1 1500, x2 800: 0.80 and 0.42); sub 5.00 by
    # task (2.50 each): x = 9.22. Window 2 (days 16-30, pb): main 3.00 by "ok" outcome (y1,
    # y2); pct 10.50 by outcome fee (y1 10.00, y3 0.50); sub 5.00 over y1-y3: y = 18.50.
    prices = tmp_path / "prices.yaml"
    prices.write_text(MID_PERIOD_PRICES)
    store = open_store(tmp_path / "mid.db")
    for name, text in MID_PERIOD_PLANS.items():
        plans.apply_plan_text(store, text, name)
    plans.subscribe(store, "c1", "pa@1", dt.date(2026, 11, 1))
    plans.subscribe(store, "c1", "pb@1", dt.date(2026, 11, 16))
    ingest_lines(store, _mid_period_lines(), catalog=Catalog.from_file(prices))
    (invoice,) = invoices.run_invoices(store, "2026-11")
    assert invoice["total"] == "27.72" and len(invoice["windows"]) == 2
    rows = {
        row["key"]: row["revenue_usd"]
        for row in economics.report(store, "2026-11", "task_type")["rows"]
    }
    assert rows == {"x": "9.22", "y": "18.50"}
    store.close()


@pytest.mark.parametrize(
    ("now", "before", "expected"),
    [
        ("-5", "-10", "0.5000"),  # a loss halved is an improvement
        ("-15", "-10", "-0.5000"),  # a loss grown by half is a worsening
        ("5", "-10", "1.5000"),
        ("15", "10", "0.5000"),
        ("1", "0", None),
    ],
)
def test_changes_have_the_sign_of_the_move_whatever_the_baseline_sign(
    now: str, before: str, expected: str | None
) -> None:
    assert economics._change(Decimal(now), Decimal(before)) == expected


def test_cli_report_and_simulate_can_be_pinned_to_an_as_of_time(ledger: Path) -> None:
    runner = CliRunner()
    report = ["--db", str(ledger), "report", "--period", "2026-11", "--json"]
    simulate = ["--db", str(ledger), "simulate", "--period", "2026-11", "--plan", str(PLANS[0]),
                "--json"]  # fmt: skip
    for args in (report, simulate):
        now = runner.invoke(app, args)
        before = runner.invoke(app, [*args, "--as-of", "2000-01-01T00:00:00Z"])
        assert now.exit_code == 0 and before.exit_code == 0, before.output
        assert now.output != before.output  # nothing was received by 2000
        result = json.loads(before.output)
        figures = result["total"] if "total" in result else result["scenarios"][0]["plans"]
        assert Decimal(next(iter(figures.values()))["cost_usd"] if "plans" in result else
                       figures["cost_usd"]) == 0  # fmt: skip
        bad = runner.invoke(app, [*args, "--as-of", "yesterday"])
        assert bad.exit_code != 0 and "--as-of" in bad.output


@pytest.mark.parametrize("name", ["missing/chart.png", "chart.gif"])
def test_a_chart_path_that_cannot_be_written_is_refused_before_any_work(
    ledger: Path, tmp_path: Path, name: str
) -> None:
    args = ["--db", str(ledger), "report", "--period", "2026-11", "--chart", str(tmp_path / name)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--chart" in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback


def test_report_chart_follows_by(ledger: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    drawn = {}
    for by in ("customer", "task_type", "customer"):
        path = tmp_path / f"{by}.svg"
        args = ["--db", str(ledger), "report", "--period", "2026-11", "--by", by]
        result = runner.invoke(
            app, [*args, "--as-of", "2026-12-09T00:00:00Z", "--chart", str(path)]
        )
        assert result.exit_code == 0, result.output
        drawn.setdefault(by, set()).add(path.read_bytes())
    assert len(drawn["customer"]) == 1  # the same rows draw the same bytes
    assert drawn["customer"] != drawn["task_type"]  # the rows are by what --by says
    # one bar per row in each of the two panels (hidden, visible): 4 customers, 3 types
    patches = {}
    for by in ("customer", "task_type"):
        svg = ET.fromstring(next(iter(drawn[by])))
        groups = svg.iter("{http://www.w3.org/2000/svg}g")
        patches[by] = sum(1 for g in groups if g.get("id", "").startswith("patch"))
    assert patches["customer"] - patches["task_type"] == 2 * (4 - 3)
