"""`payoff recost`: price steps again after a price override or a catalog update."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from payoff.cli import Settings, app, emit_json, err, out
from payoff.cli.options import AsJson

if TYPE_CHECKING:
    from payoff.service.recost import Progress as OnSteps


def _day(value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"a date is YYYY-MM-DD, got {value!r}") from None


@contextmanager
def _steps_bar() -> Iterator[OnSteps | None]:
    """A progress bar in steps on a terminal; nothing when stderr is a file or a pipe."""
    if not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("recost"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("recost", total=None)

        def on_steps(examined: int, total: int) -> None:
            bar.update(task, completed=examined, total=total)

        yield on_steps


@app.command()
def recost(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer's steps.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only steps from this day on, YYYY-MM-DD (UTC).")
    ] = None,
    every_step: Annotated[
        bool,
        typer.Option(
            "--all", help="Also re-price priced steps that no finalized invoice billed yet."
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Price steps again with the catalog of now (with --prices, its overrides): after a
    price override or a catalog update.

    Unpriced model calls are priced wherever they are; with --all, every model call the
    catalog priced is too, unless a finalized invoice billed it. A finalized invoice never
    changes: a month already billed gets the difference on its next invoice, as late usage.
    Each batch of 10,000 steps commits on its own, keeping the costs it replaces; running
    again changes nothing that is already at the catalog's price.
    """
    from payoff.service.recost import recost as recost_steps
    from payoff.service.recost import recost_json, selection

    settings: Settings = ctx.obj
    chosen = selection(customer, _day(since), every_step)
    catalog = settings.catalog()
    store = settings.store(create=False)
    try:
        with _steps_bar() as on_steps:
            totals = recost_steps(store, catalog, chosen, progress=on_steps)
    finally:
        store.close()
    shown = recost_json(totals, catalog)
    if as_json:
        emit_json(shown)
        return
    for line in _summary(shown):
        out.print(line, markup=False, highlight=False)


def _summary(shown: dict[str, Any]) -> list[str]:
    lines = [
        f"examined {shown['examined']:,} steps: re-priced {shown['repriced']:,} "
        f"({shown['newly_priced']:,} unpriced before), unchanged {shown['unchanged']:,}, "
        f"still unpriced {shown['still_unpriced']:,}; kept as they are: billed on a finalized "
        f"invoice {shown['billed']:,}, no longer priceable {shown['not_priceable']:,}",
        f"the re-priced steps cost {shown['cost_before_usd']} USD before, "
        f"{shown['cost_after_usd']} USD after",
    ]
    if shown["in_billed_months"]:
        lines.append(
            f"{shown['in_billed_months']:,} re-priced steps are of months already invoiced: "
            "their next invoice bills the difference, as late usage"
        )
    overrides = shown["overrides_sha256"]
    lines.append(
        f"priced by {shown['catalog']}" + (f" with overrides {overrides}" if overrides else "")
    )
    return lines
