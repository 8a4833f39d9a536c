"""The Meter: where an application's tasks send their records, embedded or remote.

    meter = payoff.Meter()                                   # ./payoff.db
    meter = payoff.Meter("http://127.0.0.1:8000", api_key=KEY)
    with meter.task(customer="acme", type="support.ticket") as task:
        task.record(response)

Both sinks take the same records v1, validated here first; costs for budgets come from the
Meter's own catalog and are kept in its BudgetBook, so budgets behave the same on both. The
embedded sink (and with it the store and the ingest pipeline) is imported only by a Meter
that writes a local ledger. See docs/sdk.md.
"""

from __future__ import annotations

import atexit
import datetime as dt
import functools
import os
import re
import threading
import urllib.parse
import weakref
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import msgspec

from payoff.catalog import Catalog
from payoff.core.errors import RecordError
from payoff.core.periods import Period, to_us
from payoff.core.tokens import TokenCounts, UsageDetails
from payoff.records import Record, decode_record
from payoff.sdk.budget import Budget, BudgetBook, parse_usd_argument
from payoff.sdk.deadletter import DeadLetters, ProblemCallback
from payoff.sdk.ids import new_id
from payoff.sdk.remote import RemoteSink
from payoff.sdk.task import Task

DEFAULT_LEDGER = Path("payoff.db")
DEFAULT_STATE = Path(".payoff")
CLOSE_AT_EXIT_TIMEOUT_S = 5.0
MAX_RECORD_BYTES = 2**20
"""One record's JSON at most: far above any real record, far below a request's limits."""

_encode = msgspec.json.Encoder().encode


class Sink(Protocol):
    def submit(self, record: bytes) -> None: ...

    def period_spend_nanousd(self, customer: str, period: Period) -> int: ...

    def flush(self, timeout_s: float | None = ...) -> bool: ...

    def close(self, timeout_s: float | None = ...) -> bool: ...


class Meter:
    """Meters tasks into an embedded ledger (a path; `./payoff.db` by default) or a server.

    Remote options: `api_key` (default: env PAYOFF_API_KEY), `spool` (folder of the
    spool files, default `./.payoff/HOST_PORT/spool`), `queue_records`, `batch_records`,
    `spool_interval_s`, `timeout_s`. Undeliverable records go to `dead_letter` (a JSON Lines
    file) and to `on_problem(problem)`. `catalog` prices steps for budgets (pass the one with
    your overrides so that budgets see the costs your ledger will).
    """

    def __init__(
        self,
        target: str | Path | None = None,
        *,
        api_key: str | None = None,
        catalog: Catalog | None = None,
        spool: str | Path | None = None,
        dead_letter: str | Path | None = None,
        on_problem: ProblemCallback | None = None,
        queue_records: int = 10_000,
        batch_records: int = 1_000,
        spool_interval_s: float = 0.2,
        timeout_s: float = 10.0,
        close_at_exit: bool = True,
    ) -> None:
        self.catalog = catalog or Catalog()
        self._lock = threading.Lock()  # the catalog's caches (see cost_nanousd)
        text = str(target) if target is not None else str(DEFAULT_LEDGER)
        self.remote = text.startswith(("http://", "https://"))
        self.sink: Sink
        if self.remote:
            self.dead_letters, self.sink = _remote_sink(
                text,
                api_key,
                spool,
                dead_letter,
                on_problem,
                queue_records=queue_records,
                batch_records=batch_records,
                spool_interval_s=spool_interval_s,
                timeout_s=timeout_s,
            )
        else:
            self.dead_letters, self.sink = _embedded_sink(
                Path(text), self.catalog, dead_letter, on_problem
            )
        self.budgets = BudgetBook(self.sink.period_spend_nanousd)
        self._closed = False
        if close_at_exit:
            atexit.register(self._close_at_exit)  # a forked child inherits it: it closes too
        os.register_at_fork(after_in_child=functools.partial(_in_forked_child, weakref.ref(self)))

    def after_fork_in_child(self) -> None:
        """New locks in a forked child: a parent's thread may have held them at fork()."""
        self._lock = threading.Lock()
        self.budgets.after_fork_in_child()
        self.dead_letters.after_fork_in_child()

    # -- tasks ----------------------------------------------------------------------------

    def task(
        self,
        customer: str,
        type: str | None = None,
        *,
        id: str | None = None,
        budget: Budget | None = None,
        attributes: dict[str, str] | None = None,
    ) -> Task:
        """A task of `customer`; use `with meter.task(...) as task:` (see Task)."""
        return Task(self, customer, type, id, budget, attributes)

    def customer_budget(
        self, customer: str, *, cost_per_period: str | Decimal, enforce: bool = False
    ) -> None:
        """Limit what one customer's tasks may cost per calendar month (UTC); see docs/sdk.md."""
        limit = parse_usd_argument(cost_per_period, "cost_per_period")
        self.budgets.set_customer_budget(customer, limit, enforce)

    def signal(
        self,
        name: str,
        *,
        task: str | None = None,
        outcome: str | None = None,
        id: str | None = None,
        time: dt.datetime | None = None,
        attributes: dict[str, str] | None = None,
    ) -> str:
        """Record a signal about a task or an outcome from the customer's systems (a
        follow-up such as `conversation.reopened`, or any activity); its id. Outcome
        contracts read signals: docs/contracts.md."""
        record: dict[str, Any] = {
            "record": "signal",
            "id": id or new_id("sig"),
            "name": name,
            "time": (time or dt.datetime.now(dt.UTC)).isoformat(),
        }
        if task is not None:
            record["task"] = task
        if outcome is not None:
            record["outcome"] = outcome
        if attributes:
            record["attributes"] = attributes
        self.emit(record)
        return str(record["id"])

    # -- records --------------------------------------------------------------------------

    def emit(self, record: dict[str, Any]) -> Record:
        """Validate one record v1 with the ledger's decoder and hand it to the sink."""
        if self._closed:
            raise RuntimeError("this Meter is closed")
        # Encoded, decoded only to validate, and the bytes (not the decoded value) go on: a
        # record is then checked by the very decoder ingest uses, one validation path for
        # every sink, and the sink receives exactly the line a file or a server would. The
        # round trip costs microseconds beside the model call being metered.
        line = _encode(record)
        if len(line) > MAX_RECORD_BYTES:
            raise RecordError(f"the record is {len(line):,} bytes; at most {MAX_RECORD_BYTES:,}")
        decoded = decode_record(line)  # RecordError here, at the call site, never later
        self.sink.submit(line)
        return decoded

    def cost_nanousd(
        self,
        provider: str,
        model: str,
        batch: bool,
        moment: dt.datetime,
        counts: TokenCounts,
        visible: bool,
        details: UsageDetails | None = None,
    ) -> int | None:
        """A model call's cost from the catalog, as ingest will cost it; None if unpriced."""
        with self._lock:  # the catalog's caches are not made for concurrent writers
            table = self.catalog.price_table(provider, model, batch, to_us(moment))
        if table is None:
            return None
        return table.cost_nanousd(counts, visible=visible, details=details)[0]

    # -- delivery -------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Deliver everything recorded so far; False when the server did not take it in time
        (the records are safe in the spool and are sent later)."""
        return self.sink.flush(timeout_s)

    def close(self, timeout_s: float | None = 30.0) -> bool:
        """Flush and stop. What could not be delivered stays in the spool for the next Meter."""
        if self._closed:
            return True
        self._closed = True
        atexit.unregister(self._close_at_exit)
        return self.sink.close(timeout_s)

    def _close_at_exit(self) -> None:
        self.close(CLOSE_AT_EXIT_TIMEOUT_S)

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _remote_sink(
    url: str,
    api_key: str | None,
    spool: str | Path | None,
    dead_letter: str | Path | None,
    on_problem: ProblemCallback | None,
    *,
    queue_records: int,
    batch_records: int,
    spool_interval_s: float,
    timeout_s: float,
) -> tuple[DeadLetters, Sink]:
    """A server's sink: a spool under ./.payoff/HOST_PORT unless told otherwise."""
    key = api_key or os.environ.get("PAYOFF_API_KEY")
    if not key:
        raise ValueError("a remote Meter needs an ingest key: api_key=... or PAYOFF_API_KEY")
    state = DEFAULT_STATE / _folder_name(url)
    spool_folder = Path(spool) if spool is not None else state / "spool"
    letters = Path(dead_letter) if dead_letter else spool_folder / "dead-letter.jsonl"
    dead_letters = DeadLetters(letters, on_problem)
    sink = RemoteSink(
        url,
        key,
        spool_folder,
        dead_letters,
        queue_records=queue_records,
        batch_records=batch_records,
        spool_interval_s=spool_interval_s,
        timeout_s=timeout_s,
    )
    return dead_letters, sink


def _embedded_sink(
    path: Path,
    catalog: Catalog,
    dead_letter: str | Path | None,
    on_problem: ProblemCallback | None,
) -> tuple[DeadLetters, Sink]:
    """A local ledger's sink. Imported here: a remote-only application never loads the
    store and the ingest pipeline (SQLAlchemy, Alembic) it needs."""
    from payoff.sdk.embedded import EmbeddedSink

    letters = Path(dead_letter) if dead_letter else Path(f"{path}.dead-letter.jsonl")
    dead_letters = DeadLetters(letters, on_problem)
    return dead_letters, EmbeddedSink(path, catalog, dead_letters)


def _folder_name(url: str) -> str:
    """A file-name-safe name for a server URL: its host and port."""
    parts = urllib.parse.urlsplit(url)
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{parts.hostname}_{parts.port or parts.scheme}")


def _in_forked_child(reference: weakref.ref[Meter]) -> None:
    meter = reference()
    if meter is not None:
        meter.after_fork_in_child()
