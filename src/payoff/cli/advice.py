"""`payoff advise`: the reasoning budget per task that pays best under per-outcome pricing."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.billing import parse_as_of
from payoff.cli.economics import AsOf, Chart, PeriodOption, _chart_path
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, Kind, cell, cells, show
from payoff.core.errors import AmountError
from payoff.core.money import parse_usd_exact_nanousd
from payoff.core.outcome_prices import OutcomePrice, per_outcome

BAND_COLUMNS = (
    Column("hidden", "Hidden tokens per task", "id"),
    Column("tasks", "Tasks", "count"),
    Column("tasks_verified", "Verified", "count"),
    Column("outcome_rate", "Outcome rate", "percent"),
    Column("interval", "95 % interval", "id"),
    Column("cost_per_task_usd", "Cost per task", "price"),
    Column("cost_per_verified_outcome_usd", "Cost per verified outcome", "price"),
    Column("budget_margin_per_task_usd", "Margin per task if capped here", "price"),
)
BUDGET_COLUMNS = (
    Column("name", "Budget", "id"),
    Column("tokens_hidden_max", "Hidden tokens per task", "count"),
    Column("tasks_cut", "Tasks cut", "count"),
    Column("outcome_rate", "Outcome rate of the rest", "percent"),
    Column("cost_per_task_usd", "Cost per task", "price"),
    Column("cost_per_verified_outcome_usd", "Cost per verified outcome", "price"),
    Column("margin_per_task_usd", "Margin per task", "price"),
)


def _price(text: str | None) -> OutcomePrice | None:
    """`--price`: an exact, non-negative amount of USD of at most 9 places."""
    if text is None:
        return None
    try:
        parse_usd_exact_nanousd(text)
    except AmountError as exc:
        raise typer.BadParameter(str(exc), param_hint="--price") from None
    return per_outcome(Decimal(text), "--price")


@app.command("advise")
def advise(
    ctx: typer.Context,
    period: PeriodOption,
    task_type: Annotated[str, typer.Option("--type", help="The task type, e.g. support.ticket.")],
    customer: Annotated[str | None, typer.Option(help="Only this customer's tasks.")] = None,
    price: Annotated[
        str | None,
        typer.Option(
            "--price",
            help="USD per verified outcome, for every outcome; default: each outcome's price "
            "in its customer's plan.",
        ),
    ] = None,
    contract: Annotated[
        str | None,
        typer.Option(
            "--contract",
            help="ID[@VERSION]: only the outcomes judged under this contract, priced by the "
            "plan charge that names it, and the tasks of the customers on such a plan.",
        ),
    ] = None,
    as_of: AsOf = None,
    as_json: AsJson = False,
    chart: Chart = None,
) -> None:
    """The outcome rate by hidden tokens per task, the cost per verified outcome, and the
    hidden-token budget per task with the best margin (docs/economics.md)."""
    from payoff.service import advice

    settings: Settings = ctx.obj
    _chart_path(chart)
    per_outcome_price = _price(price)
    as_of_us = parse_as_of(as_of)
    store = settings.store(create=False)
    result = advice.advise(
        store, period, task_type, customer, per_outcome_price, as_of_us, contract
    )
    if chart is not None:
        from payoff import charts  # matplotlib: loaded only when a chart is asked for

        charts.advice_chart(result, chart)
    if as_json:
        emit_json(result)
        return
    print_advice(result)
    if chart is not None:
        out.print(f"chart: {chart}", markup=False)


def _interval(row: dict[str, Any], figure: str, kind: Kind = "percent") -> str:
    """A figure's interval, `low - high`: `figure` names its `_low` and `_high` (before
    `_usd`, for money)."""
    unit = "_usd" if figure.endswith("_usd") else ""
    name = figure.removesuffix("_usd")
    low, high = row[f"{name}_low{unit}"], row[f"{name}_high{unit}"]
    if low is None or high is None:
        return "-"
    return f"{cell(low, kind)} - {cell(high, kind)}"


def print_advice(result: dict[str, Any]) -> None:
    whose = "all customers" if result["customer"] is None else result["customer"]
    say = _say
    say(f"Budget advice for {result['type']}, {result['period']}, {whose}, "
        f"as of {result['as_of']}")  # fmt: skip
    if result["contract"] is not None:
        say(f"Contract: {result['contract']} (the outcomes judged under it, the tasks of "
            "the customers on a plan naming it)")  # fmt: skip
    for price in result["prices"]:
        amount = (
            f"{price['price_usd']} USD"
            if price["price_usd"] is not None
            else f"{cell(price['rate'], 'percent')} of its value"
        )
        say(f"Price per verified outcome: {amount} ({price['source']})")
    say(f"{result['tasks']:,} tasks, {result['tasks_verified']:,} with a verified outcome "
        f"({cell(result['outcome_rate'], 'percent')}, 95 % interval "
        f"{_interval(result, 'outcome_rate')}); cost {cell(result['cost_usd'], 'money')} USD, "
        f"{cell(result['uncapped']['cost_per_verified_outcome_usd'], 'price')} "
        "per verified outcome")  # fmt: skip
    bands = [
        cells({**band, "hidden": f"{band['tokens_hidden_min']:,} - {band['tokens_hidden_max']:,}",
               "interval": _interval(band, "outcome_rate")}, BAND_COLUMNS)
        for band in result["bands"]
    ]  # fmt: skip
    show(out, "Outcome rate by hidden tokens per task, USD", BAND_COLUMNS, bands)
    _print_budgets(result)
    for note in result["notes"]:
        say(f"Note: {note}")


def _print_budgets(result: dict[str, Any]) -> None:
    chosen = result["recommended"]
    rows = [{"name": "No cap", **result["uncapped"]}]
    if chosen is not None and not chosen["uncapped"]:
        rows.insert(0, {"name": "Recommended", **chosen})
    show(out, "Budgets, USD", BUDGET_COLUMNS, [cells(row, BUDGET_COLUMNS) for row in rows])
    if chosen is None:
        return
    boot = result["bootstrap"]
    cap = "no cap" if chosen["uncapped"] else f"{chosen['tokens_hidden_max']:,} hidden tokens"
    _say(f"Recommended: {cap} per task; margin per task "
         f"{cell(chosen['margin_per_task_usd'], 'price')} USD, 95 % interval "
         f"{_interval(chosen, 'margin_per_task_usd', 'price')} (bootstrap over tasks, "
         f"{boot['resamples']:,} resamples, seed {boot['seed']})")  # fmt: skip
    if not chosen["uncapped"]:
        _say(f"Gain over no cap: {cell(chosen['gain_per_task_usd'], 'price')} USD per task, "
             f"95 % interval {_interval(chosen, 'gain_per_task_usd', 'price')}")  # fmt: skip


def _say(text: str) -> None:
    out.print(text, markup=False, highlight=False)
