"""The seat commands: set a customer's seat count from a day, list the counts recorded.

Each command imports the service it calls when it runs (see `payoff.cli`).
"""

from __future__ import annotations

from typing import Annotated

import typer

from payoff.cli import Settings, app, emit_json, out
from payoff.cli.billing import parse_day
from payoff.cli.options import AsJson
from payoff.cli.tables import Column, cells, show

SEAT_COLUMNS = (
    Column("from", "From", "id"),
    Column("seats", "Seats", "count"),
    Column("recorded_at", "Recorded", "time"),
)

seats_app = typer.Typer(help="Seats a customer holds, from a day.", no_args_is_help=True)
app.add_typer(seats_app, name="seats")


@seats_app.command("set")
def seats_set(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    seats: Annotated[int, typer.Argument(help="Seats held from that day on.")],
    starts: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC).")],
) -> None:
    """Set a customer's seat count from a day on (until the next count): per-seat charges
    bill each day at the count in effect that day."""
    from payoff.service import seats as seat_service

    settings: Settings = ctx.obj
    changed = seat_service.set_seats(
        settings.store(create=False), customer, seats, parse_day(starts)
    )
    suffix = "" if changed else " (already set)"
    out.print(f"{customer}: {seats} seats from {starts}{suffix}", markup=False)


@seats_app.command("list")
def seats_list(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="The customer's id.")],
    as_json: AsJson = False,
) -> None:
    """List a customer's seat counts in the order recorded (a later one for the same day
    replaces the earlier)."""
    from payoff.service import seats as seat_service

    settings: Settings = ctx.obj
    rows = seat_service.list_seats(settings.store(create=False), customer)
    if as_json:
        emit_json(rows)
        return
    show(out, f"Seats of {customer}", SEAT_COLUMNS, [cells(row, SEAT_COLUMNS) for row in rows])
