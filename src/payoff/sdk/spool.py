"""The spool: an append-only JSON Lines file of records on their way to the server.

Every batch the remote sink queues is appended here and fsync'ed before it is sent, so the
file holds, in order, every record not yet acknowledged. A side file keeps the byte offset
acknowledged so far; losing it only means re-sending records the server will answer as
duplicates. When everything is acknowledged the file is emptied; when the acknowledged
prefix passes COMPACT_MIN_BYTES and half the file, the rest is copied to a new file that
replaces it, so the spool stays small under steady load. An exclusive `flock`
marks a spool as owned by a live Meter: a spool whose lock can be taken belongs to a Meter
that ended (closed with the server down, or crashed) and is adopted by the next Meter that
starts on the same folder, which sends it before its own records.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from payoff.core.errors import Busy

MAX_BATCH_BYTES = 8 * 2**20
"""Bytes read for one request at most: well under the server's 32 MiB body limit."""


COMPACT_MIN_BYTES = 2**20
"""An acknowledged prefix larger than this (and than half the file) is compacted away."""


class SpoolLocked(Busy):
    """Another live Meter owns this spool file."""


class Spool:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset_path = path.with_suffix(".offset")
        self._lock = threading.Lock()
        self._file = path.open("ab+")
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise SpoolLocked(str(path)) from None
        self._drop_torn_tail()
        self._torn = False
        self._size = os.fstat(self._file.fileno()).st_size
        self._offset = min(self._read_offset(), self._size)

    def _drop_torn_tail(self) -> None:
        """Cut a last line a crash left half-written: it was never fsync'ed, so never counted."""
        size = os.fstat(self._file.fileno()).st_size
        if size == 0:
            return
        tail_start = max(0, size - MAX_BATCH_BYTES)
        tail = os.pread(self._file.fileno(), size - tail_start, tail_start)
        if not tail.endswith(b"\n"):
            self._file.truncate(tail_start + tail.rfind(b"\n") + 1)

    def _read_offset(self) -> int:
        try:
            return int(self._offset_path.read_text() or 0)
        except (OSError, ValueError):
            return 0  # re-sending from the start only yields duplicates

    def append(self, records: list[bytes]) -> None:
        """Append and fsync; on an error the file is left as it was and the error raised."""
        if not records:
            return
        data = b"\n".join(records) + b"\n"
        with self._lock:
            if self._torn:  # end the fragment a failed write left: the records start clean
                data = b"\n" + data
            fd = self._file.fileno()
            try:
                written = 0
                while written < len(data):  # unbuffered: a failure leaves nothing to flush later
                    written += os.write(fd, data[written:])
                os.fsync(fd)
            except OSError:
                self._cut_back(fd)
                raise
            self._size += len(data)
            self._torn = False

    def _cut_back(self, fd: int) -> None:
        """Undo a write cut short (a full disk): later reads must start on a record boundary."""
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            # The fragment stays; the next append ends it with a newline, so it is sent as one
            # malformed line the server refuses (dead-lettered) and every record stays whole.
            self._size = os.fstat(fd).st_size
            self._torn = True

    def pending(self) -> bool:
        with self._lock:
            return self._offset < self._size

    def read(self, max_records: int) -> tuple[list[bytes], int]:
        """Up to `max_records` unacknowledged records in order, and the offset after them."""
        with self._lock:
            start, size = self._offset, self._size
        if start >= size:
            return [], start
        data = os.pread(self._file.fileno(), min(size - start, MAX_BATCH_BYTES), start)
        lines = data.split(b"\n")
        lines.pop()  # the part after the last newline: empty, or a line cut by the byte limit
        if not lines:
            raise OSError(f"{self.path}: a record longer than {MAX_BATCH_BYTES} bytes")
        records = lines[:max_records]
        return records, start + sum(len(line) + 1 for line in records)

    def acknowledge(self, end_offset: int) -> None:
        with self._lock:
            self._offset = end_offset
            if self._offset >= self._size:
                # Everything sent: start the file over rather than let it grow for ever.
                os.ftruncate(self._file.fileno(), 0)
                self._offset = self._size = 0
            elif self._offset > COMPACT_MIN_BYTES and self._offset * 2 > self._size:
                self._compact()  # under steady load the end is never reached: drop the prefix
            self._write_offset(self._offset)

    def _write_offset(self, offset: int) -> None:
        with self._offset_path.open("w") as file:
            file.write(str(offset))
            file.flush()
            os.fsync(file.fileno())  # else a crash could bring back an older offset

    def _compact(self) -> None:
        """Replace the file by its unacknowledged tail, so that a crash at any point only
        resends records (duplicates), never skips one."""
        fresh_path = self.path.with_name(self.path.name + ".compacting")
        fresh = fresh_path.open("wb+")
        try:
            fcntl.flock(fresh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # ours before it is seen
            start = self._offset
            while start < self._size:  # bounded reads: the tail may be large
                chunk = os.pread(
                    self._file.fileno(), min(MAX_BATCH_BYTES, self._size - start), start
                )
                fresh.write(chunk)
                start += len(chunk)
            fresh.flush()
            os.fsync(fresh.fileno())
            # Offset 0 first: if we crash before the rename, the old file is resent whole.
            self._write_offset(0)
            os.replace(fresh_path, self.path)
            _fsync_folder(self.path.parent)
        except BaseException:
            fresh.close()
            fresh_path.unlink(missing_ok=True)
            raise
        self._file.close()
        self._file = fresh
        self._size -= self._offset
        self._offset = 0

    def close(self, *, delete_if_empty: bool = True) -> None:
        with self._lock:
            empty = self._offset >= self._size
            if delete_if_empty and empty:
                self.path.unlink(missing_ok=True)
                self._offset_path.unlink(missing_ok=True)
            self._file.close()  # releases the flock


def adopt_orphans(folder: Path, own: Path) -> list[Spool]:
    """The spools in `folder` left by Meters that ended, oldest first (ids are time-ordered)."""
    orphans = []
    for path in sorted(folder.glob("spool-*.jsonl")):
        if path == own:
            continue
        try:
            orphans.append(Spool(path))
        except (SpoolLocked, FileNotFoundError):
            continue  # a live Meter's, or removed by its owner meanwhile
    return orphans


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # makes the rename itself survive a crash
    finally:
        os.close(descriptor)
