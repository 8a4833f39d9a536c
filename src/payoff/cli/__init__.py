"""The `payoff` command: parse, call one service function, format.

A person waits for every command, so this package imports only Typer, Rich and payoff's
light modules when it loads; each command imports the services it calls (the store with
SQLAlchemy, the price catalog, the ingest pipeline) when it runs. `tests/test_cli_startup.py`
keeps `payoff --help` free of them.
"""

from __future__ import annotations

import copy
import gc
import os
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import msgspec
import typer
from rich.console import Console
from typer.core import TyperGroup

from payoff.cli.ingest_output import ProblemLog, input_hint, peek_head
from payoff.cli.tables import Column, cells, show
from payoff.core.errors import Busy, PayoffError
from payoff.core.periods import Period
from payoff.extras import MissingExtra

if TYPE_CHECKING:
    from payoff.catalog import Catalog, Override
    from payoff.service.ingest import IngestReport, ProblemSink
    from payoff.store.protocol import IngestStore, Store

LEDGER_OPTIONS = ("db", "prices")
"""The root options a command also accepts after its name: `payoff tasks --db X`."""
LEDGER_PANEL = "Ledger options (also before the command)"


class PayoffGroup(TyperGroup):
    """The root command group: every command under it also accepts the ledger options the
    root declares, so that they may follow the command's name as well as precede it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        shared = [param for param in self.params if param.name in LEDGER_OPTIONS]
        for command in _commands_under(self):
            command.params.extend(_after_command(param) for param in shared)


def _commands_under(group: Any) -> list[Any]:
    # Commands are read by duck typing: Typer's command classes are its own.
    found = []
    for command in group.commands.values():
        found += _commands_under(command) if hasattr(command, "commands") else [command]
    return found


def _after_command(root_option: Any) -> Any:
    """A command's copy of a root option, parsed and checked as the root's is, but with no
    default or environment variable (the root has read those): given, it overrides."""
    option = copy.copy(root_option)
    option.default, option.envvar, option.show_envvar = None, None, False
    option.expose_value, option.callback = False, _override_root_setting
    option.rich_help_panel = LEDGER_PANEL
    return option


def _override_root_setting(ctx: typer.Context, option: Any, value: Any) -> None:
    settings = ctx.find_root().obj
    if value is not None and isinstance(settings, Settings):
        setattr(settings, option.name, value)


app = typer.Typer(
    name="payoff",
    cls=PayoffGroup,
    help="Meter AI work in tokens, visible and hidden; cost it exactly; price it by outcomes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
# Piped output is not cut to 80 columns (tables stay readable in files and CI logs),
# unless COLUMNS says how wide it may be.
out = Console(width=None if Console().is_terminal or "COLUMNS" in os.environ else 160)
err = Console(stderr=True)


class StartUp:
    """The cyclic garbage collector waits while a command starts.

    Start-up is mostly imports (a command loads its services, the store with SQLAlchemy, the
    price catalog): modules and classes that live as long as the process, and no garbage.
    The collector's scans of them found nothing and cost a tenth of `payoff tasks`. It runs
    again, with what start-up made frozen out of its scans, once the command has its store
    or price catalog, before any real work; a command that never opens either is short.
    """

    collector_paused = False

    @classmethod
    def pause_collector(cls) -> None:
        if gc.isenabled():
            gc.disable()
            cls.collector_paused = True

    @classmethod
    def over(cls) -> None:
        if cls.collector_paused:
            cls.collector_paused = False
            gc.freeze()
            gc.enable()


@dataclass
class Settings:
    db: str
    prices: Path | None
    opened: list[Store] = field(default_factory=list)
    """The stores the command opened, closed when it ends (a server's connections are
    closed, not left to the garbage collector)."""

    def store(self, *, create: bool = True) -> Store:
        from payoff.store import open_store

        try:
            opened = open_store(self.db, create=create, busy_timeout_s=self.busy_timeout_s())
        finally:
            StartUp.over()
        self.opened.append(opened)
        return opened

    def close_stores(self) -> None:
        while self.opened:
            self.opened.pop().close()

    def busy_timeout_s(self) -> float:
        """How long a write waits for another process's lock on the ledger (PAYOFF_BUSY_TIMEOUT)."""
        from payoff.store.busy import busy_timeout_from

        return busy_timeout_from(os.environ.get("PAYOFF_BUSY_TIMEOUT"))

    def catalog(self) -> Catalog:
        from payoff.catalog import Catalog  # genai-prices: only commands that cost load it

        try:
            return Catalog.from_file(self.prices)
        finally:
            StartUp.over()

    def overrides(self) -> list[Override]:
        """The price overrides file's entries (none without --prices): what compute
        charges count GPU-seconds by, read without the packaged prices."""
        if self.prices is None:
            return []
        from payoff.catalog import load_overrides

        return load_overrides(self.prices)

    def ledger_path(self) -> Path:
        """The SQLite file of the ledger (a PostgreSQL URL names no file)."""
        return Path(self.db.removeprefix("sqlite:///"))

    def on_server(self) -> bool:
        """Whether the ledger is a PostgreSQL database rather than a SQLite file."""
        from payoff.store.postgres import is_postgres_url

        return is_postgres_url(self.db)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        out.print(f"payoff {version('payoff')}", markup=False, highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    db: Annotated[
        str,
        typer.Option(
            "--db",
            envvar="PAYOFF_DB",
            help="Ledger: a SQLite file path (or sqlite:/// URL), or a postgresql:// URL.",
        ),
    ] = "./payoff.db",
    prices: Annotated[
        Path | None,
        typer.Option(
            "--prices", envvar="PAYOFF_PRICES", help="Price overrides file (YAML).", exists=True
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=_print_version, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    settings = Settings(db=db, prices=prices)
    ctx.obj = settings
    ctx.call_on_close(settings.close_stores)


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

    Prints the counts first, then the first problems. Exit status 0 when nothing was
    rejected or in conflict, 1 otherwise.
    """
    from payoff import service

    settings: Settings = ctx.obj
    report = service.IngestReport()
    with ExitStack() as stack:
        # Every input and the rejects file are opened first: a missing file makes no ledger.
        inputs = [(name, _open_input(stack, name)) for name in files]
        try:
            rejects_file = stack.enter_context(rejects.open("wb")) if rejects else None
        except OSError as exc:
            raise PayoffError(f"cannot write {rejects}: {exc.strerror}") from None
        problems = ProblemLog(rejects_file)
        hints = [(name, input_hint(peek_head(stream))) for name, stream in inputs]
        catalog = settings.catalog()
        new_ledger = not settings.on_server() and not settings.ledger_path().exists()
        store = settings.store()
        finished = False
        try:
            for name, stream in inputs:
                _ingest_one(store, catalog, name, stream, report, problems.add)
            finished = True
        finally:
            store.close()
            # A failed ingest into a ledger it made leaves none behind (an empty input
            # that failed nothing still makes an empty ledger, as asked).
            if new_ledger and report.accepted == 0 and not (finished and report.clean):
                _remove_ledger(settings.ledger_path())
    _print_ingest_summary(report, as_json)
    for line in problems.lines(str(rejects) if rejects else None):
        err.print(line, markup=False, highlight=False, soft_wrap=True)
    for name, hint in hints:
        if hint is not None and report.rejected:
            err.print(f"hint: {name}: {hint}", markup=False, highlight=False, soft_wrap=True)
    if report.builder_restarts:
        err.print(
            f"note: a builder process stopped ({report.builder_restarts}x: killed or out of "
            "memory) and was started again; its batches were built here, each written once",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(0 if report.clean else 1)


def _print_ingest_summary(report: IngestReport, as_json: bool) -> None:
    if as_json:
        emit_json({**report.counts(), "unpriced": report.unpriced})
        return
    out.print(
        f"accepted {report.accepted:,}, duplicates {report.duplicates:,}, "
        f"conflicts {report.conflicts:,}, rejected {report.rejected:,}, "
        f"unpriced {report.unpriced:,}",
        markup=False,
        highlight=False,
    )
    if report.unpriced:
        out.print(
            f"{report.unpriced} accepted steps could not be priced: their cost is unknown "
            "(see `payoff tasks`, and `--prices` to price them)"
        )


def _remove_ledger(path: Path) -> None:
    """Remove a ledger this command created and wrote nothing to, with SQLite's side files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def _open_input(stack: ExitStack, name: str) -> BinaryIO:
    if name == "-":
        return sys.stdin.buffer
    try:
        return stack.enter_context(Path(name).open("rb"))
    except OSError as exc:
        raise PayoffError(f"cannot read {name}: {exc.strerror}") from None


def _ingest_one(
    store: IngestStore,
    catalog: Catalog,
    name: str,
    stream: BinaryIO,
    report: IngestReport,
    on_problem: ProblemSink,
) -> None:
    from payoff import service
    from payoff.service.ingest import FILE_COMMIT_ROWS

    with ExitStack() as stack:
        on_bytes = None
        if err.is_terminal:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            total = None if name == "-" else Path(name).stat().st_size
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
            store,
            lines,
            catalog=catalog,
            on_problem=on_problem,
            source=name,
            report=report,
            commit_rows=None if name == "-" else FILE_COMMIT_ROWS,
        )


MAX_OFFSET = 10**12
"""Beyond any ledger's row count, and inside the 64-bit integer an SQL OFFSET takes."""

TASK_COLUMNS = (
    Column("id", "Task", "id"),
    Column("customer", "Customer", "id"),
    Column("type", "Type", "id"),
    Column("status", "Status", "id"),
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
    offset: Annotated[int, typer.Option(min=0, max=MAX_OFFSET, help="Skip this many first.")] = 0,
) -> None:
    """List tasks with their steps, visible and hidden tokens, and cost."""
    from payoff.service.tasks import list_tasks, task_json

    settings: Settings = ctx.obj
    store = settings.store(create=False)
    found = list_tasks(store, customer, limit=limit, offset=offset)
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
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same ledger.")] = 7,
    customers: Annotated[int, typer.Option(min=1, max=1000, help="Number of customers.")] = 6,
    month: Annotated[
        str, typer.Option(help="Month to generate, YYYY-MM.", callback=_check_month)
    ] = "2026-11",
) -> None:
    """Generate a realistic month of agent work, ingest it, and summarise it."""
    from payoff import demo as demo_module

    settings: Settings = ctx.obj
    store = settings.store()
    # The charts go next to the database file, named after it (for a server: ./payoff-*).
    path = Path("payoff.db") if settings.on_server() else settings.ledger_path()
    demo_module.run(
        store,
        settings.catalog(),
        seed=seed,
        customers=customers,
        month=month,
        console=out,
        charts_prefix=path.with_name(path.stem),
        ledger=settings.db if settings.on_server() else str(path),
    )
    store.close()


# The advice, billing, economics, outcome and server commands register themselves on `app`.
from payoff.cli import advice as _advice  # noqa: E402
from payoff.cli import billing as _billing  # noqa: E402
from payoff.cli import contracts as _contracts  # noqa: E402
from payoff.cli import credits as _credits  # noqa: E402
from payoff.cli import economics as _economics  # noqa: E402
from payoff.cli import ops as _ops  # noqa: E402
from payoff.cli import outcomes as _outcomes  # noqa: E402
from payoff.cli import published as _published  # noqa: E402
from payoff.cli import recost as _recost  # noqa: E402
from payoff.cli import seats as _seats  # noqa: E402
from payoff.cli import server as _server  # noqa: E402
from payoff.cli import verify as _verify  # noqa: E402

del _advice, _billing, _contracts, _credits, _economics, _ops, _outcomes, _published, _recost
del _seats, _server, _verify


EXIT_REFUSED = 2
"""The exit status of a command the input or the ledger's rules refuse."""
EXIT_BUSY = 75
"""The exit status of a command refused because the ledger is busy: trying again may
succeed (EX_TEMPFAIL in sysexits.h, which schedulers and retry loops know)."""


def main() -> None:
    StartUp.pause_collector()
    try:
        app()
    except Busy as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_BUSY)
    except PayoffError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(EXIT_REFUSED)
    except MissingExtra as exc:  # the feature asked for is not installed: say which extra
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
