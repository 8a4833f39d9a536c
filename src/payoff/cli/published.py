"""`payoff tables`: the published techniques and pricing-models tables, from the ledger."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.billing import parse_as_of
from payoff.cli.economics import AsOf, Chart, PeriodOption, _chart_path
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show

MODELS = ("per-token", "per-task", "per-outcome", "subscription")
TECHNIQUE_COLUMNS = (
    Column("technique", "Technique", "id"),
    Column("cost_change", "Cost", "change"),
    *(Column(model, f"Revenue {model}", "change") for model in MODELS),
)
MODEL_COLUMNS = (
    Column("model", "Pricing model", "id"),
    Column("provider_risk", "Provider risk", "percent"),
    Column("provider_words", "(published)", "text"),
    Column("customer_risk", "Customer risk", "percent"),
    Column("customer_words", "(published)", "text"),
    Column("value_alignment", "Value alignment", "percent"),
    Column("alignment_words", "(published)", "text"),
    Column("margin_share", "Margin", "percent"),
)


@app.command("tables")
def tables(
    ctx: typer.Context,
    period: PeriodOption,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            help="Replace an assumption: speculative:spec_accept=A,... or cache:cache_hit=H.",
        ),
    ] = None,
    as_of: AsOf = None,
    as_json: AsJson = False,
    chart: Chart = None,
) -> None:
    """The published techniques and pricing-models tables, recomputed from the ledger."""
    from payoff.service import published_tables

    settings: Settings = ctx.obj
    _chart_path(chart)
    as_of_us = parse_as_of(as_of)
    result = published_tables.tables(
        settings.store(create=False), period, settings.catalog(), scenario or [], as_of_us
    )
    if chart is not None:
        from payoff import charts

        charts.published_chart(result, chart)
    if as_json:
        emit_json(result)
        return
    print_tables(result, out)
    if chart is not None:
        out.print(f"chart: {chart}", markup=False)


def _words(row: dict[str, Any], measure: str) -> str:
    """The ledger's word beside the published one: `(=)` when they agree, `(by definition)`
    when the pricing model fixes the cell, `-` with no figure."""
    word, said = row[f"{measure}_word"], row[f"{measure}_published"]
    if word is None:
        return f"- ({said})"
    if row[f"{measure}_by_construction"]:
        return f"{word} (by definition)"
    return f"{word} ({said})" if word != said else f"{word} (=)"


def print_tables(result: dict[str, Any], console: Console) -> None:
    """Both tables, each followed by what the published row says and where it differs."""
    if result["empty"]:
        console.print(
            f"{result['period']} has no usage to recompute the tables from: "
            "every figure below is empty.",
            markup=False,
            highlight=False,
        )
    rows = [
        cells({**row, **{m: row["revenue_change"][m] for m in MODELS}}, TECHNIQUE_COLUMNS)
        for row in result["techniques"]
    ]
    title = f"Techniques, {result['period']}: change with the technique against without"
    show(console, title, TECHNIQUE_COLUMNS, rows)
    for row in result["techniques"]:
        assumed = ", ".join(f"{k}={'-' if v is None else v}" for k, v in row["depends_on"].items())
        console.print(
            f"{row['technique']}" + (f" (assumes {assumed})" if assumed else ""),
            markup=False,
            highlight=False,
        )
        for claim in row["claims"]:
            why = f": {claim['why']}" if "why" in claim else ""
            console.print(
                f"  published {claim['published']}; this ledger {_signed(claim['ledger'])}: "
                f"{claim['verdict']}{why}",
                markup=False,
                highlight=False,
            )
    model_rows = [
        cells(
            {
                **row,
                "provider_words": _words(row, "provider_risk"),
                "customer_words": _words(row, "customer_risk"),
                "alignment_words": _words(row, "value_alignment"),
            },
            MODEL_COLUMNS,
        )
        for row in result["pricing_models"]
    ]
    show(console, f"Pricing models, {result['period']}", MODEL_COLUMNS, model_rows)
    risk, alignment = result["thresholds"]["risk"], result["thresholds"]["value_alignment"]
    console.print(
        f"Risk: low below {_pct(risk['low'])}, medium below {_pct(risk['medium'])}, else high; "
        f"value alignment: poor below {_pct(alignment['poor'])}, moderate below "
        f"{_pct(alignment['moderate'])}, good below {_pct(alignment['good'])}, else excellent.",
        markup=False,
        highlight=False,
    )
    for row in result["pricing_models"]:
        for note in row["notes"]:
            console.print(f"{row['model']}: {note}", markup=False, highlight=False)


def _pct(fraction: str) -> str:
    return f"{Decimal(fraction) * 100:.0f} %"


def _signed(fraction: str | None) -> str:
    if fraction is None:
        return "-"
    share = (Decimal(fraction) * 100).quantize(Decimal("0.1"))
    return f"{share} %" if share < 0 else f"+{share} %"
