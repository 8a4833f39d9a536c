"""One writer thread for a server: every request's records are written by it, in order.

SQLite allows one writer at a time, and each commit costs an fsync (`synchronous=FULL`).
Requests that arrive while a write is under way wait in a queue; the writer then takes all
of them (up to MAX_GROUP_RECORDS) into one transaction: a group commit. Each request learns
its own rows' statuses, and is answered only after the transaction that holds them has
committed, so an acknowledged record is on disk.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, TypeVar

from payoff.core.errors import Busy
from payoff.service.clock import now_us
from payoff.service.ingest import Refused, take_out_refused
from payoff.service.outcomes import check_attestations
from payoff.store.protocol import RECORD_KINDS, IngestStore, WriteBatch, WriteResult, WriteStatus

T = TypeVar("T")

MAX_GROUP_RECORDS = 20_000
"""Records per group transaction: a few requests of 1,000 to 10,000 records."""
CHECKPOINT_INTERVAL_S = 0.5
"""How often the WAL is copied into the database while writes come in."""
MAX_QUEUED = 256
"""Requests waiting for the writer; beyond it, submitters wait (back-pressure, bounded memory)."""


class WriterBusy(Busy):
    """The writer's queue is full: the caller should retry shortly (back-pressure)."""


class WriterClosed(Busy):
    """The writer is closed: the server is stopping, and a request that arrived as it did is
    answered 503, so that the client retries against the server that follows."""


def _settle(
    future: Future[Any], result: Any = None, exception: BaseException | None = None
) -> None:
    """Give a caller its answer, unless it stopped waiting (a cancelled future takes none)."""
    if future.cancelled():
        return
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            assert result is not None, "a settled future gets a result or an exception"
            future.set_result(result)
    except InvalidStateError:  # cancelled between the check and now
        pass


@dataclass
class Written:
    """What became of one submitted batch."""

    result: WriteResult
    """Statuses aligned with the batch's rows (its attestations as kept, see `refused`)."""
    refused: list[Refused] = field(default_factory=list)
    """Verdicts the outcome lifecycle refused before writing."""


@dataclass
class _Job:
    """Work that writes through the store by itself (OTLP spans), run alone, in order."""

    work: Callable[[], Any]
    future: Future[Any]


@dataclass
class _Submission:
    batch: WriteBatch
    future: Future[Written]
    refused: list[Refused] = field(default_factory=list)
    """Verdicts taken out of `batch` by the lifecycle check (kept if the write is retried)."""


class LedgerWriter:
    """Writes batches from many threads through one thread, committing waiting ones together."""

    def __init__(self, store: IngestStore, *, max_group_records: int = MAX_GROUP_RECORDS) -> None:
        self.store = store
        self.max_group_records = max_group_records
        self._queue: queue.Queue[_Submission | _Job | None] = queue.Queue(MAX_QUEUED)
        self._thread = threading.Thread(target=self._run, name="payoff-writer", daemon=True)
        self._closed = False
        self._wrote = threading.Event()
        self._stopped = threading.Event()
        self._checkpointer: threading.Thread | None = None
        if store.defer_checkpoints():
            self._checkpointer = threading.Thread(
                target=self._checkpoints, name="payoff-checkpoint", daemon=True
            )
            self._checkpointer.start()
        self._thread.start()

    def _checkpoints(self) -> None:
        """Checkpoint the WAL off the request path, at most every CHECKPOINT_INTERVAL_S."""
        while not self._stopped.wait(CHECKPOINT_INTERVAL_S):
            if self._wrote.is_set():
                self._wrote.clear()
                self.store.checkpoint()

    def submit(self, batch: WriteBatch, *, wait: bool = False) -> Future[Written]:
        """Queue a batch; raise WriterBusy when MAX_QUEUED wait already, unless `wait`."""
        if self._closed:
            raise WriterClosed("the ledger writer is closed: the server is stopping")
        future: Future[Written] = Future()
        try:
            self._queue.put(_Submission(batch, future), block=wait)
        except queue.Full:
            raise WriterBusy(f"{MAX_QUEUED} requests are waiting to be written") from None
        return future

    def call(self, work: Callable[[], T], *, wait: bool = False) -> Future[T]:
        """Run `work` on the writer thread, between groups: for a use case that writes
        through the store in a transaction of its own. Back-pressure as for `submit`."""
        if self._closed:
            raise WriterClosed("the ledger writer is closed: the server is stopping")
        future: Future[T] = Future()
        try:
            self._queue.put(_Job(work, future), block=wait)
        except queue.Full:
            raise WriterBusy(f"{MAX_QUEUED} requests are waiting to be written") from None
        return future

    def write(self, batch: WriteBatch) -> Written:
        """Submit and wait: for callers on a plain thread."""
        return self.submit(batch, wait=True).result()

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._thread.join()
            self._stopped.set()
            if self._checkpointer is not None:
                self._checkpointer.join()
                self.store.checkpoint()

    def _run(self) -> None:
        job: _Job | None = None
        while True:
            first = job or self._queue.get()
            job = None
            if first is None:
                return
            if isinstance(first, _Job):
                self._run_job(first)
                continue
            group, stop = [first], False
            size = len(first.batch)
            while size < self.max_group_records:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                if isinstance(more, _Job):
                    job = more  # run after this group: submissions keep their order
                    break
                group.append(more)
                size += len(more.batch)
            self._write_group(group)
            if stop:
                return

    def _run_job(self, job: _Job) -> None:
        if job.future.cancelled():
            return
        try:
            result = job.work()
        except Exception as exc:  # the job's own failure is its caller's answer
            _settle(job.future, exception=exc)
            return
        self._wrote.set()
        _settle(job.future, result)

    def _write_group(self, group: list[_Submission]) -> None:
        try:
            merged = WriteBatch()
            for submission in group:
                for kind in RECORD_KINDS:
                    getattr(merged, kind).extend(getattr(submission.batch, kind))
            check = (lambda b: self._check_verdicts(group, b)) if merged.attestations else None
            result = self.store.write(merged, now_us, check)
            self._wrote.set()
        except BaseException as exc:  # nothing of the group was committed
            if isinstance(exc, Busy):  # the ledger's, not a request's: each would wait again
                for submission in group:
                    _settle(submission.future, exception=exc)
                return
            if len(group) > 1 and isinstance(exc, Exception):
                for submission in group:  # one request's failure must not fail the others
                    self._write_group([submission])
                return
            _settle(group[0].future, exception=exc)
            if not isinstance(exc, Exception):
                raise
            return
        offsets = dict.fromkeys(RECORD_KINDS, 0)
        for submission in group:
            statuses: dict[str, list[WriteStatus]] = {}
            for kind in RECORD_KINDS:
                count = len(getattr(submission.batch, kind))
                statuses[kind] = getattr(result, kind)[offsets[kind] : offsets[kind] + count]
                offsets[kind] += count
            _settle(submission.future, Written(WriteResult(**statuses), submission.refused))

    def _check_verdicts(self, group: list[_Submission], merged: WriteBatch) -> None:
        """Refuse verdicts out of lifecycle order (the group's claims included), as ingest does.

        Runs under the write lock (see SqlStore.write). Refused rows are taken out of their
        submission's batch and out of the merged one, so statuses stay aligned.
        """
        attestations = [row for sub in group for row in sub.batch.attestations]
        if not attestations:
            return
        outcomes = [row for sub in group for row in sub.batch.outcomes]
        verdicts = iter(check_attestations(self.store, attestations, outcomes))
        for submission in group:
            submission.refused += take_out_refused(submission.batch, verdicts)
        merged.attestations = [row for sub in group for row in sub.batch.attestations]
