"""The remote sink: records queued in memory, spooled to disk, sent in batches by threads.

    record() ──> queue (bounded, in memory) ──spooler thread──> spool file (fsync) ──sender
    thread──> POST /v1/events ──> acknowledged offset

The call that records only appends to the queue; it never waits for the network. Every
`spool_interval_s` (or sooner when a batch is full) the spooler appends what is queued to
the spool and fsyncs it. The sender posts what is in the spool, in order, up to
`batch_records` a request, and moves the acknowledged offset on. Connection errors, 5xx,
408 and 429 are retried with exponential backoff, for ever: the records wait on disk; so
are 401, 403 and 404 (a configuration error, reported once per status). Other 4xx
answers, and records answered `rejected` or `conflict`, would be refused again: they go
to the dead-letter file and the `on_problem` callback (payoff.sdk.deadletter).

When the queue is full the recording call itself appends the queue to the spool (a disk
write, no network), so a slow or absent server never costs memory beyond the bound.

What a crash of the agent can lose: the records still in the queue, i.e. those recorded in
the last `spool_interval_s` (plus the time of one fsync), and never more than
`queue_records`. Everything spooled survives and is sent by the next Meter started with the
same spool folder.
"""

from __future__ import annotations

import functools
import http.client
import logging
import os
import random
import threading
import time
import urllib.parse
import weakref
from collections import deque
from pathlib import Path

import msgspec

from payoff.core.periods import Period
from payoff.problems import Problem
from payoff.records import record_id
from payoff.sdk.deadletter import DeadLetters
from payoff.sdk.ids import uuid7
from payoff.sdk.spool import Spool, adopt_orphans

logger = logging.getLogger("payoff.sdk")

BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0
RETRIED_STATUSES = frozenset({408, 429})
CONFIGURATION_STATUSES = frozenset({401, 403, 404})
"""A wrong key, a key without ingest rights, a wrong URL: the records are fine, so they wait
in the spool (retried with backoff) until the configuration is fixed, never dead-lettered."""


class _Answer(msgspec.Struct):
    statuses: list[str]
    problems: list[dict[str, object]] = []


class RemoteSink:
    def __init__(
        self,
        url: str,
        api_key: str,
        spool_folder: Path,
        dead_letters: DeadLetters,
        *,
        queue_records: int = 10_000,
        batch_records: int = 1_000,
        spool_interval_s: float = 0.2,
        timeout_s: float = 10.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.dead_letters = dead_letters
        self.queue_records = queue_records
        self.batch_records = batch_records
        self.spool_interval_s = spool_interval_s
        self._client = _Client(self.url, api_key, timeout_s)
        spool_folder.mkdir(parents=True, exist_ok=True)
        self._spool_folder = spool_folder
        own = spool_folder / f"spool-{uuid7()}.jsonl"
        self._spools = [*adopt_orphans(spool_folder, own), Spool(own)]
        self._queue: deque[bytes] = deque()
        self._spooling = 0  # records taken from the queue whose spool write has not ended
        self._reported_statuses: set[int] = set()
        self._stopping = False
        self._closed = False
        self._new_locks()
        self._threads: list[threading.Thread] = []
        self._start()
        os.register_at_fork(after_in_child=functools.partial(_in_forked_child, weakref.ref(self)))

    def _new_locks(self) -> None:
        self._queue_lock = threading.Lock()
        self._spool_lock = threading.Lock()  # one writer of the spool at a time keeps order
        self._start_lock = threading.Lock()
        self._spool_now = threading.Event()
        self._send_now = threading.Event()
        self._progress = threading.Condition()

    def _start(self) -> None:
        with self._start_lock:
            if self._threads:
                return
            if not self._spools:  # a forked child: a spool file of its own
                own = self._spool_folder / f"spool-{uuid7()}.jsonl"
                self._spools = [Spool(own)]
            self._threads = [
                threading.Thread(target=self._spooler, name="payoff-spooler", daemon=True),
                threading.Thread(target=self._sender, name="payoff-sender", daemon=True),
            ]
            for thread in self._threads:
                thread.start()

    def after_fork_in_child(self) -> None:
        """Give a forked child a sink of its own; the parent's state is the parent's.

        The child inherits the parent's queue, locks (perhaps held by a thread that does not
        exist here), spool descriptors and connection, but none of its threads. It drops the
        parent's queued records (the parent sends them), never touches the parent's spool
        files (closing them could delete them), and starts its own spool and threads on its
        first record.
        """
        self._queue = deque()
        self._spooling = 0
        self._new_locks()
        self._spools = []
        self._threads = []
        self._client.forget()

    # -- the call site ------------------------------------------------------------------

    def submit(self, record: bytes) -> None:
        if self._closed:
            raise RuntimeError("this Meter is closed")
        if not self._threads:
            self._start()  # a forked child starts its threads on its first record
        with self._queue_lock:
            if len(self._queue) < self.queue_records:
                self._queue.append(record)
                if len(self._queue) >= self.batch_records:
                    self._spool_now.set()
                return
        # Full: spool here, queue first, so the order stays the order of recording.
        try:
            self._spool_queue(also=record)
        except OSError:
            # The record is queued (put back with the rest): raising would make a caller
            # that retries record it twice. It waits in memory until the disk takes it.
            logger.exception("payoff: cannot write the spool; records stay queued in memory")

    def period_spend_nanousd(self, customer: str, period: Period) -> int:
        return 0  # a remote Meter knows only what it recorded itself (see docs/sdk.md)

    # -- the spooler thread -------------------------------------------------------------

    def _spool_queue(self, also: bytes | None = None) -> None:
        with self._spool_lock:
            with self._queue_lock:
                records = list(self._queue)
                self._queue.clear()
                if also is not None:
                    records.append(also)
                # Out of the queue, not yet in the spool: still pending for flush() and close().
                self._spooling = len(records)
            if not records:
                return
            try:
                self._spools[-1].append(records)
            except OSError:
                with self._queue_lock:
                    self._queue.extendleft(reversed(records))
                raise
            finally:
                with self._queue_lock:
                    self._spooling = 0
        self._send_now.set()

    def _spooler(self) -> None:
        while True:
            self._spool_now.wait(self.spool_interval_s)
            self._spool_now.clear()
            try:
                self._spool_queue()
            except OSError:
                logger.exception("payoff: cannot write the spool; records stay queued")
            with self._progress:
                self._progress.notify_all()
            if self._stopping:
                return  # close() makes the last try itself, once the threads are gone

    # -- the sender thread --------------------------------------------------------------

    def _sender(self) -> None:
        failures = 0
        while True:
            if self._stopping and (failures or not self._spool_pending()):
                return  # closing: a failed try ends it; the spool keeps the rest
            try:
                sent = self._send_next_batch()
            except Exception:
                # An error nobody foresaw (a full disk under the dead-letter file, a bug)
                # must not end delivery for good: say so, back off, and try again.
                logger.exception("payoff: the sender failed; retrying, records wait in the spool")
                sent = False
            if sent is None:
                self._send_now.wait(self.spool_interval_s)
                self._send_now.clear()
            elif sent:
                failures = 0
                with self._progress:
                    self._progress.notify_all()
            else:
                failures += 1
                delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** min(failures, 16))
                self._send_now.wait(delay * random.uniform(0.5, 1.0))
                self._send_now.clear()

    def _send_next_batch(self) -> bool | None:
        """Send the oldest unacknowledged batch: None when there is none, else if it went."""
        spool = next((s for s in self._spools if s.pending()), None)
        if spool is None:
            self._retire_orphans()
            return None
        records, end = spool.read(self.batch_records)
        if not self._deliver(records):
            return False
        spool.acknowledge(end)
        return True

    def _retire_orphans(self) -> None:
        while len(self._spools) > 1 and not self._spools[0].pending():
            self._spools.pop(0).close()

    def _deliver(self, records: list[bytes]) -> bool:
        """Send one batch; True when it need not be sent again (delivered or dead-lettered)."""
        try:
            status, body = self._client.post(b"\n".join(records))
        except (OSError, http.client.HTTPException) as exc:
            logger.info("payoff: server unreachable (%s); records wait in the spool", exc)
            return False
        if status == 200:
            try:
                answer = msgspec.json.decode(body, type=_Answer)
            except msgspec.DecodeError:
                # The server answers JSON: this came from something in between (a proxy's
                # page), so the records may not have arrived. Resending is safe (ids).
                logger.warning("payoff: a 200 answer that is not payoff's JSON; retrying")
                return False
            self._report(records, answer)
            return True
        if status >= 500 or status in RETRIED_STATUSES:
            logger.info("payoff: server answered %s; retrying", status)
            return False
        if status in CONFIGURATION_STATUSES:
            self._report_configuration(status, body)
            return False
        if status == 413 and len(records) > 1:
            self.batch_records = max(1, len(records) // 2)
            return False
        reason = f"HTTP {status}: {body[:500].decode('utf-8', 'replace')}"
        for record in records:
            problem = Problem(None, record_id(record), "rejected", reason, None, self.url)
            self.dead_letters.add(record, problem)
        return True

    def _report_configuration(self, status: int, body: bytes) -> None:
        reason = f"HTTP {status}: {body[:500].decode('utf-8', 'replace')}"
        if status in self._reported_statuses:
            logger.info("payoff: %s still answers %s; records wait in the spool", self.url, reason)
            return
        self._reported_statuses.add(status)  # once per status: retries must not flood
        logger.error(
            "payoff: %s answers %s: check the URL and the ingest key; records wait in the "
            "spool and are retried",
            self.url,
            reason,
        )
        self.dead_letters.report(Problem(None, None, "refused", reason, None, self.url))

    def _report(self, records: list[bytes], answer: _Answer) -> None:
        for problem in answer.problems:
            index = problem.get("index")
            if not isinstance(index, int) or not 0 <= index < len(records):
                continue
            field = problem.get("field")
            self.dead_letters.add(
                records[index],
                Problem(
                    None,
                    str(problem.get("id")),
                    str(problem.get("status")),
                    str(problem.get("reason")),
                    field if isinstance(field, str) else None,
                    self.url,
                ),
            )

    # -- flush and close ----------------------------------------------------------------

    def _spool_pending(self) -> bool:
        return any(spool.pending() for spool in self._spools)

    def _pending(self) -> bool:
        return bool(self._queue or self._spooling) or self._spool_pending()

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Send everything recorded so far; False if the server did not take it in time."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        self._spool_now.set()
        self._send_now.set()
        with self._progress:
            while self._pending():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._progress.wait(min(left or 0.05, 0.05))
                self._spool_now.set()
        return True

    def close(self, timeout_s: float | None = 30.0) -> bool:
        """Flush, stop the threads; whatever is unsent stays in the spool for the next Meter."""
        if self._closed:
            return True
        delivered = self.flush(timeout_s)
        self._closed = True
        self._stopping = True
        self._spool_now.set()
        self._send_now.set()
        for thread in self._threads:
            thread.join(timeout=self._client.timeout_s + 1)
        self._spool_leftovers()
        if not any(thread.is_alive() for thread in self._threads):
            for spool in self._spools:
                spool.close()
        if not delivered and self._spools:
            logger.warning(
                "payoff: records not yet delivered to %s stay in %s for the next Meter",
                self.url,
                self._spools[-1].path,
            )
        self._client.close()
        return delivered

    def _spool_leftovers(self) -> None:
        """One last try to spool what the spooler could not write; report what still fails."""
        try:
            self._spool_queue()
            return
        except OSError as exc:
            reason = f"the spool could not be written: {exc}"
        with self._queue_lock:
            lost = list(self._queue)
            self._queue.clear()
        # Nowhere left to keep them (the dead-letter file sits on the same disk): say how
        # many, loudly, and hand each to on_problem rather than hang or drop them silently.
        logger.error("payoff: %d records could not be spooled and are lost (%s)", len(lost), reason)
        for record in lost:
            problem = Problem(None, record_id(record), "lost", reason, None, self.url)
            self.dead_letters.report(problem)


class _Client:
    """One keep-alive HTTP connection to the server, made again after any error."""

    def __init__(self, url: str, api_key: str, timeout_s: float) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"a payoff server URL is http(s)://host[:port], got {url!r}")
        self._parts = parts
        self._path = (parts.path.rstrip("/") or "") + "/v1/events"
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/x-ndjson",
        }
        self.timeout_s = timeout_s
        self._connection: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int, bytes]:
        if self._connection is None:
            kind = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            self._connection = kind(
                self._parts.hostname or "", self._parts.port, timeout=self.timeout_s
            )
        try:
            self._connection.request("POST", self._path, body=body, headers=self._headers)
            response = self._connection.getresponse()
            return response.status, response.read()
        except BaseException:
            self.close()
            raise

    def forget(self) -> None:
        """Drop the connection without closing it: after fork() the socket is the parent's."""
        self._connection = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _in_forked_child(reference: weakref.ref[RemoteSink]) -> None:
    sink = reference()
    if sink is not None:
        sink.after_fork_in_child()
