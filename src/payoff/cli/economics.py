"""The economics commands: the period report and the simulation of plans and scenarios."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.billing import parse_as_of
from payoff.cli.options import AsJson

Chart = Annotated[Path | None, typer.Option("--chart", help="Also draw a chart: FILE.png or .svg.")]
PeriodOption = Annotated[str, typer.Option("--period", help="The period, YYYY-MM.")]
AsOf = Annotated[
    str | None,
    typer.Option("--as-of", help="Read what the ledger held at this time (RFC 3339); default now."),
]

REPORT_COLUMNS = (
    "revenue", "cost", "margin", "margin_pct", "tasks", "verified_outcomes", "success_rate",
    "cost_per_task", "cost_per_verified_outcome", "visible_tokens", "hidden_tokens",
    "hidden_ratio", "hidden_cost_share", "unpriced_events", "provider_risk", "customer_risk",
    "value_alignment",
)  # fmt: skip
PLAN_COLUMNS = (
    "revenue", "cost", "margin", "margin_pct", "provider_risk", "customer_risk",
    "value_alignment", "cost_per_verified_outcome", "revenue_change", "cost_change",
    "margin_change",
)  # fmt: skip
USAGE_KEYS = ("tokens", "uncached_input", "reasoning", "hidden_steps", "target_passes", "cost")


def _chart_path(chart: Path | None) -> None:
    """Refuse a chart path that cannot be written before any work is done."""
    if chart is None:
        return
    if chart.suffix.lower() not in (".png", ".svg"):
        raise typer.BadParameter(f"a .png or .svg file, got {str(chart)!r}", param_hint="--chart")
    if not chart.parent.is_dir():
        raise typer.BadParameter(f"no folder {str(chart.parent)!r}", param_hint="--chart")


MONEY_COLUMNS = frozenset(
    {"revenue", "cost", "margin", "cost_per_task", "cost_per_verified_outcome"}
)
CENT = Decimal("0.01")


def _cell(value: Any, column: str = "") -> str:
    """Table text: money to the cent (exact figures stay in --json), counts with separators."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if column in MONEY_COLUMNS:
        return f"{Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_EVEN):,}"
    return str(value)


def _table(*headers: str, title: str) -> Table:
    """Columns fold rather than cut: a narrow terminal wraps a name, never hides it."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


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
) -> None:
    """Revenue, cost, margin, outcomes, hidden tokens and risks of a period, per row."""
    from payoff.service import economics

    settings: Settings = ctx.obj
    _chart_path(chart)
    store = settings.store(create=False)
    as_of_us = parse_as_of(as_of)
    result = economics.report(store, period, by, as_of_us)
    if chart is not None:  # the chart is of agent types, whatever the rows are by
        types = (
            result if by == "task_type" else economics.report(store, period, "task_type", as_of_us)
        )
        from payoff import charts  # matplotlib: loaded only when a chart is asked for

        charts.tokens_chart(types, chart)
    if as_json:
        emit_json(result)
        return
    print_report(result)
    if chart is not None:
        out.print(f"chart: {chart}", markup=False)


def print_report(result: dict[str, Any]) -> None:
    table = _table(result["by"], *REPORT_COLUMNS, title=f"Economics, {result['period']}")
    for row in [*result["rows"], {"key": "TOTAL", **result["total"]}]:
        table.add_row(row["key"], *(_cell(row[c], c) for c in REPORT_COLUMNS))
    out.print(table)
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
    print_simulation(result)
    if chart is not None:
        out.print(f"chart: {chart}", markup=False)


def print_simulation(result: dict[str, Any]) -> None:
    table = _table(
        "scenario", "plan", *PLAN_COLUMNS, title=f"Plans and scenarios, {result['period']}"
    )
    for scenario in result["scenarios"]:
        for name, figures in scenario["plans"].items():
            cells = (_cell(figures[c], c) for c in PLAN_COLUMNS)
            table.add_row(scenario["scenario"], name, *cells)
    out.print(table)
    print_techniques(result)


def print_techniques(result: dict[str, Any]) -> None:
    """Each technique's reduction in tokens or passes, and the revenue change per plan."""
    table = _table(
        "technique",
        *(f"{key} change" for key in USAGE_KEYS),
        *(f"revenue change {plan}" for plan in result["plans"]),
        title="Techniques: what they save, and what they do to revenue",
    )
    for scenario in result["scenarios"][1:]:
        params = ",".join(f"{k}={v}" for k, v in scenario["params"].items())
        table.add_row(
            f"{scenario['scenario']} ({params})",
            *(_cell(scenario["usage_change"][key]) for key in USAGE_KEYS),
            *(_cell(scenario["plans"][plan]["revenue_change"]) for plan in result["plans"]),
        )
    out.print(table)
