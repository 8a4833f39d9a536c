"""Backups of a running ledger, and restoring one.

    payoff backup PATH
      ledger ──online backup, one snapshot──▶ .PATH.<pid>.partial   (same folder)
                                                │ integrity_check, revision, counts
                                                ▼
                                   fsync, then link/rename ──▶ PATH

What a crash can lose: nothing of the ledger (it is only read). A crash mid-copy leaves
the hidden `.partial` file, never a half backup under the final name; delete it.

    payoff restore BACKUP
      BACKUP checked ──▶ ledger locked exclusively (refused while a server has it open)
                     ──▶ pages written over it in one transaction of the ledger
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from payoff.core.errors import StoreError
from payoff.store.protocol import LedgerCounts, RecordStore
from payoff.store.sqlite import Progress, check_file, known_revision, restore_file

BACKUP_FILE_MODE = 0o600


@dataclass(frozen=True)
class LedgerCopy:
    """A checked copy of a ledger: where it is and what it holds."""

    path: Path
    size_bytes: int
    revision: str
    counts: LedgerCounts


def backup(
    store: RecordStore, target: Path, *, force: bool = False, progress: Progress | None = None
) -> LedgerCopy:
    """Copy the ledger to `target` while it is in use, check the copy, then name it `target`.

    Refuses an existing `target` unless `force`; the copy is written beside it under a
    hidden temporary name and only renamed once it is complete and checked.
    """
    if target.exists() and not force:
        raise StoreError(f"{target} exists; choose another name, or --force to replace it")
    if not target.parent.is_dir():
        raise StoreError(f"cannot write {target}: folder {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        # Owner-only from the first byte: a ledger holds key hashes and webhook secrets.
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, BACKUP_FILE_MODE))
        store.backup_to(partial, progress)
        revision, counts = _checked(partial, "the copy")
        _fsync(partial)
        _publish(partial, target, force=force)
    finally:
        partial.unlink(missing_ok=True)
    _fsync(target.parent)  # the new name itself survives a power loss
    return LedgerCopy(target, target.stat().st_size, revision, counts)


def restore(
    backup_path: Path, ledger: str, progress: Progress | None = None, *, force: bool = False
) -> LedgerCopy:
    """Write a checked backup over the ledger; refused while another process has it open,
    and, unless `force`, when the ledger holds records (they would be replaced)."""
    if not backup_path.is_file():
        raise StoreError(f"no backup at {backup_path}")
    revision, _ = _checked(backup_path, "the backup")
    if not known_revision(revision):
        raise StoreError(
            f"the backup is at migration revision {revision}, which this payoff does not know "
            "(it was taken by a newer payoff): install that version to restore it"
        )
    if "://" in ledger and not ledger.startswith("sqlite:///"):
        raise StoreError("restore writes SQLite ledgers only: give --db a file path")
    path = Path(ledger.removeprefix("sqlite:///"))
    if not force and path.is_file() and path.stat().st_size > 0:
        found = check_file(path)
        if found.counts is not None and found.counts.events + found.counts.customers > 0:
            raise StoreError(
                f"the ledger {path} holds {found.counts.events:,} events of "
                f"{found.counts.customers:,} customers; restoring replaces them all: "
                "back it up first (payoff backup), then pass --force"
            )
    restore_file(backup_path, path, progress)
    revision, counts = _checked(path, "the restored ledger")
    return LedgerCopy(path, path.stat().st_size, revision, counts)


def _checked(path: Path, what: str) -> tuple[str, LedgerCounts]:
    """The file's migration revision and counts, once it passes its integrity check."""
    found = check_file(path)
    if found.integrity_problems:
        raise StoreError(
            f"{what} failed its integrity check: {'; '.join(found.integrity_problems)}"
        )
    if found.revision is None or found.counts is None:
        raise StoreError(f"{what} at {path} is not a payoff ledger (no migration revision)")
    return found.revision, found.counts


def _publish(partial: Path, target: Path, *, force: bool) -> None:
    """Give the complete copy its name; without `force`, never over a file made meanwhile."""
    if force:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)  # fails if the name was taken since the check above
    except FileExistsError:
        raise StoreError(
            f"{target} exists; choose another name, or --force to replace it"
        ) from None


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
