"""The ingest use case: JSON lines in, idempotent ledger rows out, with a report.

The pipeline is lines -> batches of BATCH_RECORDS -> decode and cost (rows) -> one store
transaction per batch -> per-record statuses. Decoding and costing are pure Python work;
writing is mostly SQLite's. On a machine with a spare core, a worker process builds batch
k+1 while this process writes batch k, so the two overlap. Batches are written in order, so
the result is the same, record for record, as building them here one after another. The
server keeps a Builder too, for its large requests.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import multiprocessing
import multiprocessing.context
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

from payoff.catalog import Catalog, Override
from payoff.core.errors import RecordError
from payoff.problems import Problem
from payoff.records import MAX_RECORD_BYTES, decode_line, plain_lines, record_id
from payoff.rows import COST_AT, RowBuilder
from payoff.service.clock import now_us
from payoff.service.gc_pause import gc_paused
from payoff.store.protocol import (
    ACCEPTED,
    ACCEPTED_STATUS,
    CONFLICT,
    DUPLICATE,
    RECORD_KINDS,
    REJECTED,
    IngestStore,
    Row,
    WriteBatch,
    WriteStatus,
)

BATCH_RECORDS = 10_000
FILE_COMMIT_ROWS = 50_000
"""Rows a file's ingest writes between commits: random ids cost a third as much as with a
commit per batch (bench/RESULTS.md), and a crash loses at most this many to ingest again."""
"""Records per transaction: large enough that commits are cheap, small enough for flat memory."""
BATCH_BYTES = 8 * 1024 * 1024
"""Bytes of lines per transaction, at most: 10,000 typical records are 3 MB; a batch of long
lines is cut sooner, so that what a batch holds has a bound whatever its lines are."""

MAX_PROBLEMS_KEPT = 1_000
"""Problems kept in memory for the summary; all of them still reach `on_problem`."""

Line = tuple[int, bytes]
UTF8_BOM = b"\xef\xbb\xbf"
LINE_READ_BYTES = MAX_RECORD_BYTES + len(UTF8_BOM) + 1
"""Bytes of a line read at once: the longest record, a byte-order mark and its new line.
A longer line is refused from these bytes, and the rest of it is never held."""
ProblemSink = Callable[[Problem], None]


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    rejected: int = 0
    problems: list[Problem] = field(default_factory=list)
    unpriced: int = 0
    """Accepted steps the catalog could not price (their cost is unknown, not zero)."""
    builder_restarts: int = 0
    """Builder processes started again after one died (each batch was still built once)."""

    def counts(self) -> dict[str, int]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "conflicts": self.conflicts,
            "rejected": self.rejected,
        }

    @property
    def clean(self) -> bool:
        return self.rejected == 0 and self.conflicts == 0


def numbered_lines(
    stream: BinaryIO, on_bytes: Callable[[int], None] | None = None
) -> Iterator[Line]:
    """(line number, line) for the non-blank lines of a binary stream, read lazily.

    A line longer than a record may be is never read whole: its first LINE_READ_BYTES stand
    for it (decoding refuses them as too long, naming the line) and the rest is read past in
    chunks, so that memory stays bounded whatever the input holds.
    """
    readline = stream.readline
    number = 0
    while line := readline(LINE_READ_BYTES):
        number += 1
        size = len(line)
        if size == LINE_READ_BYTES and line[-1:] != b"\n":
            size += _read_past_line(readline)
        if on_bytes is not None:
            on_bytes(size)
        if number == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM) :]  # written by some editors; not part of the record
        if not line.isspace():
            yield number, line


def _read_past_line(readline: Callable[[int], bytes]) -> int:
    """Read the rest of a line a chunk at a time, keeping none of it; its size in bytes."""
    size = 0
    while chunk := readline(LINE_READ_BYTES):
        size += len(chunk)
        if chunk[-1:] == b"\n":
            break
    return size


class BuiltBatch(NamedTuple):
    """A batch ready to write, and the lines refused while decoding it."""

    batch: WriteBatch
    problems: list[Problem]


def build_batch(catalog: Catalog, source: str | None, lines: list[Line]) -> BuiltBatch:
    """Decode and cost a batch of lines: the pure-Python half of ingest."""
    add = RowBuilder(catalog).add
    batch, problems = WriteBatch(), []
    plain = plain_lines([line for _, line in lines])
    for number, line in lines:
        try:
            add(batch, decode_line(line, number, plain=plain), number)
        except RecordError as exc:
            problems.append(
                Problem(number, record_id(line), REJECTED, exc.reason, exc.field, source)
            )
        except Exception as exc:  # one record must never sink its batch
            reason = f"could not be processed ({type(exc).__name__}: {exc})"
            problems.append(Problem(number, record_id(line), REJECTED, reason, None, source))
    return BuiltBatch(batch, problems)


# -- the worker process ------------------------------------------------------------------

_worker_catalog: Catalog | None = None


def _die_with_parent() -> None:
    """On Linux, ask the kernel to kill this process when its parent dies.

    A worker blocks reading its next batch; when the parent is killed (SIGKILL, OOM), the
    worker's own copy of the pipe keeps that read from ever ending, and it would linger.
    """
    if sys.platform != "linux":
        return
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def _start_worker(overrides: list[Override]) -> None:
    global _worker_catalog
    _die_with_parent()
    gc.disable()  # the worker only builds batches: see gc_paused
    _worker_catalog = Catalog(overrides)


def build_in_worker(source: str | None, lines: list[Line]) -> BuiltBatch:
    """build_batch in a builder process, with the catalog the process started with."""
    assert _worker_catalog is not None
    return build_batch(_worker_catalog, source, lines)


class Submitted(NamedTuple):
    """A batch handed to a builder worker, with what it takes to build it again here."""

    future: Future[BuiltBatch]
    pool: ProcessPoolExecutor
    source: str | None
    lines: list[Line]


class Builder:
    """Processes that build batches (decode and cost) beside the process that writes them.

    File ingest passes a fork context on Linux (the imported modules are shared, a worker
    starts in milliseconds). A long-running server keeps the default, spawn: it has threads
    (its event loop, its writer), which a forked child would inherit in whatever state they
    were. Either way the processes are this one's children and die with it (see
    _die_with_parent).

    A worker that dies (killed, out of memory) breaks its pool for good: `build` (and, for
    file ingest, `built`) then starts a fresh pool for the next batches and builds the batch
    at hand in this process instead, so a lost worker costs one slower batch, never a
    request, a batch or a traceback.
    """

    def __init__(
        self,
        catalog: Catalog,
        workers: int,
        context: multiprocessing.context.BaseContext | None = None,
    ) -> None:
        self.catalog = catalog
        self.workers = workers
        self.context = context or multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pool = self._start()
        self.restarts = 0
        """Pools started in place of one whose worker died (killed, out of memory)."""

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=self.context,
            initializer=_start_worker,
            initargs=(self.catalog.overrides,),
        )

    def submit(self, source: str | None, lines: list[Line]) -> Future[BuiltBatch]:
        """Build one batch in a worker; the future raises BrokenProcessPool if it died."""
        return self._pool.submit(build_in_worker, source, lines)

    def submit_batch(self, source: str | None, lines: list[Line]) -> Submitted:
        """Build one batch in a worker, to be collected with `built` (which survives the
        worker's death); a pool broken since the last batch is replaced first."""
        pool = self._pool
        try:
            return Submitted(pool.submit(build_in_worker, source, lines), pool, source, lines)
        except BrokenProcessPool:
            self._replace(pool)
        pool = self._pool
        try:
            return Submitted(pool.submit(build_in_worker, source, lines), pool, source, lines)
        except (BrokenProcessPool, OSError):  # no worker can start now: build it here
            here: Future[BuiltBatch] = Future()
            here.set_result(build_batch(self.catalog, source, lines))
            return Submitted(here, pool, source, lines)

    def built(self, submitted: Submitted) -> BuiltBatch:
        """The batch a worker built; if the worker died first, the batch built here, and a
        fresh pool started for the next ones. Nothing is lost either way: the batch is
        written once, in its turn."""
        try:
            return submitted.future.result()
        except BrokenProcessPool:
            self._replace(submitted.pool)
            return build_batch(self.catalog, submitted.source, submitted.lines)

    async def build(self, source: str | None, lines: list[Line]) -> BuiltBatch:
        """Build one batch in a worker without blocking the event loop; see the class."""
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(build_in_worker, source, lines))
        except BrokenProcessPool:
            self._replace(pool)
            return await asyncio.to_thread(build_batch, self.catalog, source, lines)

    def _replace(self, broken: ProcessPoolExecutor) -> bool:
        """Start a fresh pool in place of `broken`; False when that was done already."""
        with self._lock:
            if self._pool is not broken:  # replaced by a request that failed alongside
                return False
            broken.shutdown(wait=False)
            self._pool = self._start()
            self.restarts += 1
            return True

    def shutdown(self, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(cancel_futures=cancel_futures)

    def __enter__(self) -> Builder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def default_workers() -> int:
    """One builder process when there is a core to spare for it, else none."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


# -- the pipeline --------------------------------------------------------------------------


def _batches(lines: Iterable[Line]) -> Iterator[list[Line]]:
    """Lines in batches of BATCH_RECORDS, or fewer when they reach BATCH_BYTES."""
    batch: list[Line] = []
    size = 0
    for line in lines:
        batch.append(line)
        size += len(line[1])
        if len(batch) == BATCH_RECORDS or size >= BATCH_BYTES:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


class _Ingest:
    def __init__(
        self,
        store: IngestStore,
        catalog: Catalog,
        on_problem: ProblemSink | None,
        source: str | None,
        report: IngestReport,
        clock: Callable[[], int] = now_us,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.on_problem = on_problem
        self.source = source
        self.report = report
        self.clock = clock

    def run(self, lines: Iterable[Line], workers: int) -> IngestReport:
        batches = _batches(lines)
        first_two = list(itertools.islice(batches, 2))
        with gc_paused():
            if workers == 0 or len(first_two) < 2:
                # Small inputs are not worth starting a process for.
                for lines_of_batch in itertools.chain(first_two, batches):
                    self.write(*build_batch(self.catalog, self.source, lines_of_batch))
            else:
                self._run_with_workers(itertools.chain(first_two, batches), workers)
        return self.report

    def _run_with_workers(self, batches: Iterable[list[Line]], workers: int) -> None:
        # On Linux, fork shares the imported modules, so a worker starts in milliseconds;
        # elsewhere fork is unsafe with threads, and the platform's default is used.
        context = multiprocessing.get_context("fork" if sys.platform == "linux" else None)
        with Builder(self.catalog, workers, context) as builder:
            pending: deque[Submitted] = deque()
            for lines_of_batch in batches:
                pending.append(builder.submit_batch(self.source, lines_of_batch))
                # Keep every worker busy while this process writes, and no more in memory.
                while len(pending) > workers:
                    self.write(*builder.built(pending.popleft()))
            while pending:
                self.write(*builder.built(pending.popleft()))
            self.report.builder_restarts += builder.restarts

    def write(self, batch: WriteBatch, problems: list[Problem]) -> None:
        if len(batch):
            # Verdicts are checked under the write lock, so that no other writer can slip
            # a verdict of the same outcome in between the check and this batch's commit.
            check = (
                (lambda b: self._check_attestations(b, problems)) if batch.attestations else None
            )
            result = self.store.write(batch, self.clock, check)
            for kind in RECORD_KINDS:
                self._account(
                    getattr(batch, kind), batch.lines[kind], getattr(result, kind), problems
                )
            self.report.unpriced += _accepted_unpriced(batch, result.events)
        for problem in sorted(problems, key=lambda p: p.line or 0):
            self._problem(problem)

    def _check_attestations(self, batch: WriteBatch, problems: list[Problem]) -> None:
        """Refuse verdicts out of lifecycle order before anything is written."""
        from payoff.service.outcomes import check_attestations

        refusals = check_attestations(self.store, batch.attestations, batch.outcomes)
        problems.extend(
            Problem(line, record, REJECTED, reason, at, self.source)
            for line, record, reason, at in take_out_refused(batch, iter(refusals))
        )

    def _account(
        self,
        rows: list[Row],
        lines: list[int],
        statuses: list[WriteStatus],
        problems: list[Problem],
    ) -> None:
        accepted = statuses.count(ACCEPTED_STATUS)
        self.report.accepted += accepted
        if accepted == len(statuses):
            return
        for row, number, (status, reason, at) in zip(rows, lines, statuses, strict=True):
            if status == DUPLICATE:
                self.report.duplicates += 1
            elif status != ACCEPTED:
                assert status in (CONFLICT, REJECTED)
                problems.append(
                    Problem(number, str(row[0]), status, reason or status, at, self.source)
                )

    def _problem(self, problem: Problem) -> None:
        if problem.status == REJECTED:
            self.report.rejected += 1
        else:
            self.report.conflicts += 1
        if len(self.report.problems) < MAX_PROBLEMS_KEPT:
            self.report.problems.append(problem)
        if self.on_problem is not None:
            self.on_problem(problem)


Refused = tuple[int, str, str, str | None]
"""(line, record id, reason, field at fault) of a verdict taken out of its batch."""


def take_out_refused(batch: WriteBatch, refusals: Iterator[WriteStatus | None]) -> list[Refused]:
    """Take the verdicts refused (a status, not None) out of `batch`, rows and lines alike.

    `refusals` is read for exactly this batch's verdicts, so one iterator can serve several
    batches in a row.
    """
    rows, lines = batch.attestations, batch.lines["attestations"]
    verdicts = itertools.islice(refusals, len(rows))
    kept_rows, kept_lines, refused = [], [], []
    for row, line, refusal in zip(rows, lines, verdicts, strict=True):
        if refusal is None:
            kept_rows.append(row)
            kept_lines.append(line)
        else:
            refused.append((line, str(row[0]), refusal[1] or REJECTED, refusal[2]))
    batch.attestations, batch.lines["attestations"] = kept_rows, kept_lines
    return refused


def _accepted_unpriced(batch: WriteBatch, statuses: list[WriteStatus]) -> int:
    if statuses.count(ACCEPTED_STATUS) == len(statuses):
        return batch.unpriced_events
    return sum(
        1
        for row, status in zip(batch.events, statuses, strict=True)
        if status is ACCEPTED_STATUS and row[COST_AT] is None
    )


def ingest_lines(
    store: IngestStore,
    lines: Iterable[Line],
    *,
    catalog: Catalog | None = None,
    on_problem: ProblemSink | None = None,
    source: str | None = None,
    report: IngestReport | None = None,
    workers: int | None = None,
    commit_rows: int | None = None,
    clock: Callable[[], int] | None = None,
) -> IngestReport:
    """Ingest numbered JSON lines in batches; a bad line never stops the good ones landing.

    Pass the same `report` to several calls (one per file) to add their counts up.
    `workers` builder processes (default: one when a core is spare) overlap decoding with
    writing; 0 builds every batch in this process. `commit_rows` commits once that many
    rows are written rather than after every batch (`Store.grouped_writes`): for a file,
    not for a stream whose next line may be long in coming while the write lock is held.
    `clock` stamps the records' received times (payoff's clock unless told: the demo stamps
    its simulated month's, so that what it prints does not depend on the day it runs).
    """
    ingest = _Ingest(
        store, catalog or Catalog(), on_problem, source, report or IngestReport(),
        clock or now_us,
    )  # fmt: skip
    chosen = default_workers() if workers is None else workers
    if commit_rows is None:
        return ingest.run(lines, chosen)
    with store.grouped_writes(commit_rows):
        return ingest.run(lines, chosen)
