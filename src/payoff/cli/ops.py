"""Operating a ledger: backup and restore."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from payoff.cli import Settings, app, err, out

if TYPE_CHECKING:  # the store and SQLAlchemy load when a command runs, not at start-up
    from payoff.service.backup import LedgerCopy
    from payoff.store.sqlite import Progress as OnPages


@contextmanager
def _pages_bar(description: str) -> Iterator[OnPages | None]:
    """A progress bar in pages on a terminal; nothing when stderr is a file or a pipe."""
    if not err.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("pages"),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def on_pages(copied: int, total: int) -> None:
            bar.update(task, completed=copied, total=total)

        yield on_pages


def _print_copy(verb: str, copy: LedgerCopy) -> None:
    counts = copy.counts
    out.print(
        f"{verb} {copy.path} ({copy.size_bytes:,} bytes, revision {copy.revision}): "
        f"{counts.customers:,} customers, {counts.events:,} events, {counts.tasks:,} tasks, "
        f"{counts.outcomes:,} outcomes, {counts.attestations:,} attestations; "
        "integrity check ok",
        markup=False,
        highlight=False,
    )


@app.command()
def backup(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="The backup file to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace PATH if it exists.")] = False,
) -> None:
    """Copy the ledger to PATH while it is in use (a server may keep writing), then check it.

    The copy holds every record committed before it began. It is written beside PATH under
    a hidden name and renamed once complete and checked (PRAGMA integrity_check, migration
    revision), so PATH never holds half a backup.
    """
    from payoff.service import backup as backups

    settings: Settings = ctx.obj
    store = settings.store(create=False)
    try:
        with _pages_bar(f"backup to {path}") as on_pages:
            copy = backups.backup(store, path, force=force, progress=on_pages)
    finally:
        store.close()
    _print_copy("wrote", copy)


@app.command()
def restore(
    ctx: typer.Context,
    backup_file: Annotated[Path, typer.Argument(help="A file written by `payoff backup`.")],
    force: Annotated[
        bool, typer.Option("--force", help="Replace a ledger that holds records.")
    ] = False,
) -> None:
    """Replace the ledger with a backup; refused while a server (or any process) has it open,
    and, without --force, when the ledger holds records.

    The backup is checked first; the ledger is then written in one transaction, so a restore
    cut short leaves the ledger as it was.
    """
    from payoff.service import backup as backups

    settings: Settings = ctx.obj
    with _pages_bar(f"restore {backup_file}") as on_pages:
        copy = backups.restore(backup_file, settings.db, on_pages, force=force)
    _print_copy("restored", copy)


@app.command()
def migrate(ctx: typer.Context) -> None:
    """Upgrade the ledger (a SQLite file or a PostgreSQL database) to this payoff's schema.

    Every command does it on opening a ledger; this does only that, so that an upgrade runs
    once, before servers of the new version start.
    """
    from payoff.service import ledgers

    settings: Settings = ctx.obj
    done = ledgers.migrate_ledger(settings.db, settings.busy_timeout_s())
    if done.before == done.after:
        verdict = f"already at revision {done.after}"
    else:
        verdict = f"revision {done.before or '(new)'} -> {done.after}"
    out.print(f"{_shown(settings.db)}: {verdict}", markup=False, highlight=False)


@app.command(name="copy")
def copy_ledger(
    ctx: typer.Context,
    source: Annotated[str, typer.Option("--from", help="The ledger to copy: a SQLite file.")],
    target: Annotated[
        str, typer.Option("--to", help="Where to: a postgresql:// URL (or a SQLite file).")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print each table as JSON.")] = False,
) -> None:
    """Copy a ledger into another (SQLite to PostgreSQL), then check every table's rows
    match, by count and digest.

    A copy cut short resumes where it stopped when run again. The target must not be in
    use while the copy runs.
    """
    from payoff.cli import emit_json
    from payoff.service import ledgers

    settings: Settings = ctx.obj
    tables = ledgers.copy_ledger(source, target, busy_timeout_s=settings.busy_timeout_s())
    if as_json:
        emit_json([vars(table) for table in tables])
        return
    rows, copied = sum(t.rows for t in tables), sum(t.copied for t in tables)
    out.print(
        f"copied {copied:,} rows into {_shown(target)}; {len(tables)} tables, {rows:,} rows, "
        "the same on both sides (counts and digests)",
        markup=False,
        highlight=False,
    )


def _shown(ledger: str) -> str:
    from payoff.store.postgres import is_postgres_url

    if not is_postgres_url(ledger):
        return ledger
    from payoff.store.postgres.engine import shown_url

    return shown_url(ledger)
