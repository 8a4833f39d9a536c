"""The `payoff` command: parse, call one service function, format."""

from __future__ import annotations

import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import msgspec
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from payoff import service
from payoff.catalog import Catalog
from payoff.cli.tables import Column, cells, show
from payoff.core.errors import PayoffError
from payoff.core.periods import Period
from payoff.extras import MissingExtra
from payoff.service.tasks import task_json
from payoff.store import open_store
from payoff.store.protocol import Store

app = typer.Typer(
    name="payoff",
    help="Meter AI work in tokens, visible and hidden; cost it exactly; price it by outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output is not cut to 80 columns (tables stay readable in files and CI logs),
# unless COLUMNS says how wide it may be.
out = Console(width=None if Console().is_terminal or "COLUMNS" in os.environ else 160)
err = Console(stderr=True)

PROBLEMS_SHOWN_WITH_REJECTS_FILE = 20


@dataclass
class Settings:
    db: str
    prices: Path | None

    def store(self, *, create: bool = True) -> Store:
        return open_store(self.db, create=create)

    def catalog(self) -> Catalog:
        return Catalog.from_file(self.prices)


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        str,
        typer.Option(
            "--db", envvar="PAYOFF_DB", help="Ledger: a SQLite file path (or sqlite:/// URL)."
        ),
    ] = "./payoff.db",
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices", envvar="PAYOFF_PRICES", help="Price overrides file (YAML).", exists=True
        ),
    ] = None,
) -> None:
    ctx.obj = Settings(db=db, prices=prices)


def emit_json(value: Any) -> None:
    sys.stdout.write(msgspec.json.encode(value).decode() + "\n")


@app.command()
def ingest(
    ctx: typer.Context,
    files: Annotated[list[str], typer.Argument(help="JSON Lines files of records; - for stdin.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="Write each rejection and conflict here, as JSON Lines."),
    ] = None,
) -> None:
    """Ingest records (usage, task, outcome, attestation) from JSON Lines files.

    Exit status 0 when nothing was rejected or in conflict, 1 otherwise.
    """
    settings: Settings = ctx.obj
    store, catalog = settings.store(), settings.catalog()
    report = service.IngestReport()
    shown = 0
    with ExitStack() as stack:
        try:
            rejects_file = stack.enter_context(rejects.open("wb")) if rejects else None
        except OSError as exc:
            raise PayoffError(f"cannot write {rejects}: {exc.strerror}") from None

        def on_problem(problem: service.Problem) -> None:
            nonlocal shown
            if rejects_file is not None:
                rejects_file.write(msgspec.json.encode(problem.as_dict()) + b"\n")
                if shown >= PROBLEMS_SHOWN_WITH_REJECTS_FILE:
                    return
            shown += 1
            where = f"{problem.source}:{problem.line}"
            field = f" field `{problem.field}`:" if problem.field else ""
            err.print(
                f"{where} id={problem.id or '?'} {problem.status}:{field} {problem.reason}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )

        for name in files:
            _ingest_one(store, catalog, name, report, on_problem)
    store.close()
    hidden = report.rejected + report.conflicts - shown
    if hidden > 0:
        err.print(f"... and {hidden} more in {rejects}", markup=False)
    if as_json:
        emit_json(report.counts())
    else:
        out.print(
            f"accepted {report.accepted}, duplicates {report.duplicates}, "
            f"conflicts {report.conflicts}, rejected {report.rejected}"
        )
        if report.unpriced:
            out.print(
                f"{report.unpriced} accepted steps could not be priced: their cost is unknown "
                "(see `payoff tasks`, and `--prices` to price them)"
            )
    raise typer.Exit(0 if report.clean else 1)


def _ingest_one(
    store: Store,
    catalog: Catalog,
    name: str,
    report: service.IngestReport,
    on_problem: service.ProblemSink,
) -> None:
    with ExitStack() as stack:
        if name == "-":
            stream: BinaryIO = sys.stdin.buffer
            total = None
        else:
            try:
                stream = stack.enter_context(Path(name).open("rb"))
            except OSError as exc:
                raise PayoffError(f"cannot read {name}: {exc.strerror}") from None
            total = Path(name).stat().st_size
        on_bytes = None
        if err.is_terminal:
            progress = stack.enter_context(
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    console=err,
                    transient=True,
                )
            )
            bar = progress.add_task(f"ingest {name}", total=total)

            def on_bytes(size: int) -> None:
                progress.advance(bar, size)

        lines = service.numbered_lines(stream, on_bytes)
        service.ingest_lines(
            store, lines, catalog=catalog, on_problem=on_problem, source=name, report=report
        )


TASK_COLUMNS = (
    Column("id", "Task"),
    Column("customer", "Customer"),
    Column("type", "Type"),
    Column("status", "Status"),
    Column("steps", "Steps", "count"),
    Column("tokens_visible", "Visible tokens", "count"),
    Column("tokens_hidden", "Hidden tokens", "count"),
    Column("hidden_ratio", "Hidden per visible", "exact"),
    Column("cost_usd", "Cost", "exact"),
    Column("unpriced_steps", "Unpriced steps", "count"),
)


@app.command()
def tasks(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer's tasks.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON array.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = 1000,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
) -> None:
    """List tasks with their steps, visible and hidden tokens, and cost."""
    settings: Settings = ctx.obj
    store = settings.store(create=False)
    found = service.list_tasks(store, customer, limit=limit, offset=offset)
    if len(found) == limit:
        err.print(f"showing the first {limit} tasks; use --limit and --offset for more")
    store.close()
    if as_json:
        emit_json([task_json(task) for task in found])
        return
    rows = [task_json(task) for task in found]
    show(out, "Tasks, cost in USD", TASK_COLUMNS, [cells(row, TASK_COLUMNS) for row in rows])


def _check_month(value: str) -> str:
    try:
        Period.month(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    return value


@app.command()
def demo(
    ctx: typer.Context,
    db: Annotated[str | None, typer.Option("--db", help="Ledger for the demo.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same ledger.")] = 7,
    customers: Annotated[int, typer.Option(min=1, max=1000, help="Number of customers.")] = 6,
    month: Annotated[
        str, typer.Option(help="Month to generate, YYYY-MM.", callback=_check_month)
    ] = "2026-11",
) -> None:
    """Generate a realistic month of agent work, ingest it, and summarise it."""
    from payoff import demo as demo_module

    settings: Settings = ctx.obj
    ledger = db or settings.db
    store = open_store(ledger)
    # The charts go next to the database file, named after it.
    path = Path(ledger.removeprefix("sqlite:///"))
    demo_module.run(
        store,
        settings.catalog(),
        seed=seed,
        customers=customers,
        month=month,
        console=out,
        charts_prefix=path.with_name(path.stem),
        ledger=str(path),
    )
    store.close()


# The billing, economics, outcome and server commands register themselves on `app`.
from payoff.cli import billing as _billing  # noqa: E402
from payoff.cli import economics as _economics  # noqa: E402
from payoff.cli import ops as _ops  # noqa: E402
from payoff.cli import outcomes as _outcomes  # noqa: E402
from payoff.cli import server as _server  # noqa: E402

del _billing, _economics, _ops, _outcomes, _server


def main() -> None:
    try:
        app()
    except PayoffError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except MissingExtra as exc:  # the feature asked for is not installed: say which extra
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
