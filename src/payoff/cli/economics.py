"""The economics commands: the period report and the simulation of plans and scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from payoff.cli import Settings, _check_month, app, emit_json, out
from payoff.cli.billing import parse_as_of
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show

Chart = Annotated[Path | None, typer.Option("--chart", help="Also draw a chart: FILE.png or .svg.")]
Wide = Annotated[bool, typer.Option("--wide", help="Show every column, not the main ones.")]
PeriodOption = Annotated[
    str, typer.Option("--period", help="The period, YYYY-MM.", callback=_check_month)
]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Read what the ledger held at this time (RFC 3339); default now."),
]

HEADS = {"customer": "Customer", "plan": "Plan", "task_type": "Agent type", "model": "Model"}
"""The key column's header for each `--by`."""
FIGURES = (
    Column("revenue_usd", "Revenue", "money"),
    Column("cost_usd", "Cost", "money"),
    Column("margin_usd", "Margin", "money"),
    Column("margin_share", "Margin %", "percent"),
    Column("tasks", "Tasks", "count"),
    Column("tokens_hidden", "Hidden tokens", "count"),
)
"""What `report` shows by default (one table at 80 columns): money, work, hidden work."""
FIGURES_WIDE = (
    *FIGURES[:5],
    Column("outcomes_verified", "Verified outcomes", "count"),
    Column("success_rate", "Success rate", "percent"),
    Column("cost_per_task_usd", "Cost per task", "price"),
    Column("cost_per_verified_outcome_usd", "Cost per verified outcome", "price"),
    Column("tokens_visible", "Visible tokens", "count"),
    FIGURES[5],
    Column("hidden_ratio", "Hidden per visible", "ratio"),
    Column("hidden_cost_share", "Hidden cost", "percent"),
    Column("unpriced_steps", "Unpriced steps", "count"),
    Column("provider_risk", "Provider risk", "percent"),
    Column("customer_risk", "Customer risk", "percent"),
    Column("value_alignment", "Value alignment", "percent"),
)
"""Every figure of the report (`--wide`), in the order of docs/economics.md."""
PLAN_FIGURES = (*FIGURES[:4], Column("customer_risk", "Customer risk", "percent"))
"""What `simulate` shows per plan and scenario by default (one table at 80 columns)."""
PLAN_FIGURES_WIDE = (
    *PLAN_FIGURES,
    Column("provider_risk", "Provider risk", "percent"),
    Column("value_alignment", "Value alignment", "percent"),
    Column("cost_per_verified_outcome_usd", "Cost per verified outcome", "price"),
    Column("revenue_change", "Revenue change", "change"),
    Column("cost_change", "Cost change", "change"),
    Column("margin_change", "Margin change", "change"),
)
USAGE_FIGURES = (Column("tokens", "Tokens", "change"), Column("cost_usd", "Cost", "change"))
USAGE_FIGURES_WIDE = (
    USAGE_FIGURES[0],
    Column("tokens_uncached_input", "Full-price input", "change"),
    Column("tokens_reasoning", "Reasoning tokens", "change"),
    Column("steps_hidden", "Hidden steps", "change"),
    Column("target_passes", "Target-model passes", "change"),
    USAGE_FIGURES[1],
)
"""A technique's change in each usage sum, against the baseline."""


def _chart_path(chart: Path | None) -> None:
    """Refuse a chart path that cannot be written before any work is done."""
    if chart is None:
        return
    if chart.suffix.lower() not in (".png", ".svg"):
        raise typer.BadParameter(f"a .png or .svg file, got {str(chart)!r}", param_hint="--chart")
    if not chart.parent.is_dir():
        raise typer.BadParameter(f"no folder {str(chart.parent)!r}", param_hint="--chart")


@app.command("report")
def report(
    ctx: typer.Context,
    period: PeriodOption,
    by: Annotated[str, typer.Option(help="Rows by customer, plan, task_type or model.")] = (
        "customer"
    ),
    as_of: AsOf = None,
    as_json: AsJson = False,
    chart: Chart = None,
    wide: Wide = False,
) -> None:
    """Revenue, cost, margin, outcomes, hidden tokens and risks of a period, per row."""
    from payoff.service import economics

    settings: Settings = ctx.obj
    _chart_path(chart)
    store = settings.store(create=False)
    as_of_us = parse_as_of(as_of)
    result = economics.report(store, period, by, as_of_us)
    if chart is not None:  # the chart has the rows of the table: by what --by says
        from payoff import charts  # matplotlib: loaded only when a chart is asked for

        charts.tokens_chart(result, chart)
    if as_json:
        emit_json(result)
        return
    print_report(result, wide)
    if chart is not None:
        out.print(f"chart: {chart}", markup=False)


def print_report(result: dict[str, Any], wide: bool = False) -> None:
    figures = FIGURES_WIDE if wide else FIGURES
    columns = (Column("key", HEADS[result["by"]], "id"), *figures)
    rows = [cells(row, columns) for row in [*result["rows"], {"key": "Total", **result["total"]}]]
    show(out, f"Economics of {result['period']}, USD", columns, rows)
    if not result["invoices"]:
        out.print("No invoices for the period: run `payoff invoice run` for revenue.")


@app.command("simulate")
def simulate(
    ctx: typer.Context,
    period: PeriodOption,
    plan: Annotated[list[Path], typer.Option("--plan", help="A plan file; repeat for more.")],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", help="NAME:key=value,... (see docs/economics.md); repeat."),
    ] = None,
    as_of: AsOf = None,
    as_json: AsJson = False,
    chart: Chart = None,
    wide: Wide = False,
) -> None:
    """Price the period's ledger as if every customer were on each plan, under scenarios."""
    from payoff.service import economics

    settings: Settings = ctx.obj
    _chart_path(chart)
    as_of_us = parse_as_of(as_of)
    plans = economics.load_plans(plan)
    scenarios = economics.parse_scenarios(scenario or [])
    result = economics.simulate(
        settings.store(create=False), period, plans, scenarios, settings.catalog(), as_of_us
    )
    if chart is not None:
        from payoff import charts

        charts.simulation_chart(result, chart)
    if as_json:
        emit_json(result)
        return
    print_simulation(result, wide)
    if chart is not None:
        out.print(f"chart: {chart}", markup=False)


def print_simulation(result: dict[str, Any], wide: bool = False) -> None:
    figures = PLAN_FIGURES_WIDE if wide else PLAN_FIGURES
    columns = (Column("scenario", "Scenario", "id"), Column("plan", "Plan", "id"), *figures)
    rows = [
        cells({"scenario": scenario["scenario"], "plan": name, **plan}, columns)
        for scenario in result["scenarios"]
        for name, plan in scenario["plans"].items()
    ]
    show(out, f"Plans and scenarios, {result['period']}, USD", columns, rows, keys=2)
    print_techniques(result, wide)


def print_techniques(result: dict[str, Any], wide: bool = False) -> None:
    """Each technique's change in tokens, passes and cost, and in revenue per plan; nothing
    without a --scenario (the baseline alone has no change to show)."""
    if len(result["scenarios"]) < 2:
        return
    usage = USAGE_FIGURES_WIDE if wide else USAGE_FIGURES
    columns = (
        Column("technique", "Technique", "id"),
        *usage,
        *(Column(plan, f"Revenue {plan}", "change") for plan in result["plans"]),
    )
    rows = []
    for scenario in result["scenarios"][1:]:
        params = ", ".join(f"{k}={v}" for k, v in scenario["params"].items())
        revenue = {plan: scenario["plans"][plan]["revenue_change"] for plan in result["plans"]}
        row = {"technique": f"{scenario['scenario']} ({params})", **scenario["usage_change"]}
        rows.append(cells({**row, **revenue}, columns))
    show(out, "Techniques: change against the baseline", columns, rows)
