"""The SQL backend shared by SQLite and (later) PostgreSQL: SQLAlchemy Core, portable SQL.

Writes are idempotent by each record's key. A batch is first inserted optimistically with
`ON CONFLICT DO NOTHING`; when every row lands (the common case) that is all. When some do
not, the insert is rolled back to a savepoint and the batch is classified against what is
stored (the same content: duplicate; other content: conflict) before only the new rows go
in. Content is compared column by column, all but `received_at_us`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from sqlalchemy import Connection, Engine, and_, bindparam, func, or_, select, update
from sqlalchemy.sql.expression import ColumnElement

from payoff.core.costing import PriceCatalog
from payoff.core.errors import StoreError
from payoff.core.statuses import FINAL_STATUSES
from payoff.store import rollups
from payoff.store import schema as s
from payoff.store.access import AccessQueries
from payoff.store.advice import AdviceQueries
from payoff.store.audit import AuditQueries
from payoff.store.billing import BillingQueries
from payoff.store.contracts import ContractQueries
from payoff.store.costs import CostQueries
from payoff.store.credits import CreditQueries
from payoff.store.economics import EconomicsQueries
from payoff.store.evidence import EvidenceQueries
from payoff.store.in_lists import chunks
from payoff.store.outcomes import OutcomeQueries
from payoff.store.protocol import (
    ACCEPTED,
    ACCEPTED_STATUS,
    ATTESTATIONS,
    CONFLICT,
    DUPLICATE_STATUS,
    EVENTS,
    OUTCOMES,
    REJECTED,
    SIGNALS,
    TASK_UPDATES,
    LedgerCounts,
    Row,
    RowShape,
    WriteBatch,
    WriteResult,
    WriteStatus,
)
from payoff.store.reservations import ReservationQueries
from payoff.store.signals import SignalQueries
from payoff.store.spans import SpanStaging
from payoff.store.tasks import TaskQueries


class TaskColumns(NamedTuple):
    """Where a kind of row keeps its task, customer, task type (if any) and time."""

    task: int
    customer: int
    type: int | None
    time: int

    @classmethod
    def of(cls, columns: Sequence[str], task: str, task_type: str | None) -> TaskColumns:
        return cls(
            task=columns.index(task),
            customer=columns.index("customer"),
            type=None if task_type is None else columns.index(task_type),
            time=columns.index("occurred_at_us"),
        )


EVENT_TASK_COLUMNS = TaskColumns.of(EVENTS.columns, "task", "task_type")
TASK_UPDATE_TASK_COLUMNS = TaskColumns.of(TASK_UPDATES.columns, "task", "type")
OUTCOME_TASK_COLUMNS = TaskColumns.of(OUTCOMES.columns, "task", None)

PRICE_CATALOG_COLUMNS = ("id", "catalog", "overrides_sha256", "overrides", "first_used_at_us")

TASK_COLUMNS = (
    "id",
    "customer",
    "type",
    "status",
    "status_at_us",
    "created_at_us",
    "started_at_us",
)


class SqlStore(
    SpanStaging,
    TaskQueries,
    BillingQueries,
    ContractQueries,
    OutcomeQueries,
    SignalQueries,
    EvidenceQueries,
    AccessQueries,
    EconomicsQueries,
    AdviceQueries,
    AuditQueries,
    CostQueries,
    CreditQueries,
    ReservationQueries,
):
    """A ledger in a SQL database reached through SQLAlchemy."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._catalogs_kept: set[int] = set()
        """Price catalogs known to be stored (added once their transaction committed)."""
        self._group: _WriteGroup | None = None

    # -- writing ---------------------------------------------------------------------------

    def _connect_for_write(self) -> Connection:
        return self.engine.connect()

    @contextmanager
    def _write_transaction(self) -> Iterator[Connection]:
        """The one way the store writes: a transaction that holds the write lock from its
        first statement (see SqliteStore), so what it reads before writing cannot go stale.
        The engine's own `begin` would not, and a test keeps it out of the store."""
        with self._connect_for_write() as conn, conn.begin():
            yield conn

    def _insert_sql(
        self,
        table: str,
        columns: Sequence[str],
        key: Sequence[str],
        received_at_us: int | None = None,
    ) -> str:
        marks = [self._placeholder for _ in columns]
        if received_at_us is not None:
            # One stamp for the whole statement, written as an integer literal.
            columns, marks = [*columns, "received_at_us"], [*marks, str(int(received_at_us))]
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(marks)}) "
            f"ON CONFLICT ({', '.join(key)}) DO NOTHING"
        )

    _placeholder = "?"

    def committed_now_us(self, clock: Callable[[], int]) -> int:
        """The time, read under the write lock: every record stamped up to it is committed.

        An invoice run rates as of this time, so no record can be stamped before it and
        become visible after it.
        """
        with self._write_transaction():
            return clock()

    @contextmanager
    def grouped_writes(self, rows: int) -> Iterator[None]:
        """Writes share transactions of at least `rows` rows (the protocol says why)."""
        group = _WriteGroup(self, rows)
        self._group = group
        try:
            yield
            group.commit()
        finally:
            self._group = None
            group.close()  # rolls back what was not committed

    def write(
        self,
        batch: WriteBatch,
        clock: Callable[[], int],
        before_write: Callable[[WriteBatch], None] | None = None,
    ) -> WriteResult:
        """Write a batch in one transaction; `before_write` runs first, under the write lock.

        `before_write` may take rows out of the batch (verdicts the lifecycle refuses): what it
        reads cannot change before the batch commits, since no other writer can commit.
        """
        assert len(batch) < rollups.MAX_TRANSACTION_ROWS, "a batch is held in memory"
        if self._group is not None:
            return self._group.write(batch, clock, before_write)
        with self._write_transaction() as conn:
            # Read under the write lock: everything stamped up to now is committed before
            # any later stamp, so a reader that takes its as-of time the same way misses none.
            now_us = clock()
            if before_write is not None:
                before_write(batch)
            result = self._write_rows(conn, batch, now_us)
        # Remembered once committed: a rolled-back batch must not leave its catalog cached.
        if batch.price_catalog is not None and batch.events:
            self._catalogs_kept.add(batch.price_catalog.id)
        return result

    def _write_rows(self, conn: Connection, batch: WriteBatch, now_us: int) -> WriteResult:
        """Write a batch inside the caller's write transaction, stamped `now_us`.

        The rollups take the accepted events last, once every other row is written (in a
        grouped write, at its commit): the rollup rows are the ones writers side by side
        contend for, so they are locked for as short a time as the transaction allows.
        """
        grouped = self._group is not None
        after_seq = self._events_mark(conn) if batch.events and not grouped else None
        events = self._write_events(conn, batch, now_us)
        if batch.price_catalog is not None and batch.events:
            self._keep_price_catalog(conn, batch.price_catalog, now_us)
        task_updates = self._write_task_updates(conn, batch.task_updates, now_us)
        outcomes = self._write_outcomes(conn, batch.outcomes, now_us)
        attestations = self._write_attestations(conn, batch.attestations, now_us)
        signals = self._write_signals(conn, batch.signals, now_us)
        customers = _accepted_values(batch.events, events, EVENT_TASK_COLUMNS.customer)
        customers |= _accepted_values(
            batch.task_updates, task_updates, TASK_UPDATE_TASK_COLUMNS.customer
        )
        customers |= _accepted_values(batch.outcomes, outcomes, OUTCOME_TASK_COLUMNS.customer)
        self._ensure_customers(conn, customers, now_us)
        if ACCEPTED_STATUS in events:
            if after_seq is not None:
                self._roll_up_events(conn, after_seq)  # the same transaction as the events
            elif self._group is not None:
                self._group.events_accepted = True
        return WriteResult(events, task_updates, outcomes, attestations, signals)

    def _events_mark(self, conn: Connection) -> int:
        """Taken before a transaction writes events, for `_roll_up_events`: the highest
        event seq, since one writer (SQLite's) means every event above it is this
        transaction's."""
        return rollups.last_event_seq(conn)

    def _roll_up_events(self, conn: Connection, after_seq: int) -> None:
        """Add the events this transaction accepted to the rollups (`store.rollups`)."""
        rollups.add_received(conn, after_seq)

    def _keep_price_catalog(self, conn: Connection, catalog: PriceCatalog, now_us: int) -> None:
        """Store the catalog event rows name, once; refuse one whose id names another."""
        if catalog.id in self._catalogs_kept:
            return
        inserted = conn.exec_driver_sql(
            self._insert_sql("price_catalogs", PRICE_CATALOG_COLUMNS, ("id",)),
            [(*catalog, now_us)],
        ).rowcount
        if inserted:
            return
        c = s.price_catalogs.c
        stored = conn.execute(select(c.catalog, c.overrides_sha256).where(c.id == catalog.id)).one()
        if tuple(stored) != (catalog.catalog, catalog.overrides_sha256):
            raise StoreError(
                f"price catalog id {catalog.id} names {stored.catalog} "
                f"({stored.overrides_sha256 or 'no overrides'}) in this ledger, not "
                f"{catalog.catalog} ({catalog.overrides_sha256 or 'no overrides'})"
            )

    def _ensure_customers(self, conn: Connection, ids: set[Any], now_us: int) -> None:
        if ids:
            conn.exec_driver_sql(
                self._insert_sql("customers", ("id", "created_at_us"), ("id",)),
                [(customer, now_us) for customer in sorted(ids)],
            )

    def _stored_tasks(self, conn: Connection, ids: Iterable[str]) -> dict[str, tuple[str, Any]]:
        """{task: (customer, type)} of the stored tasks among `ids`."""
        stored: dict[str, tuple[str, Any]] = {}
        t = s.tasks.c
        for chunk in chunks(sorted(set(ids))):
            rows = conn.execute(select(t.id, t.customer, t.type).where(t.id.in_(chunk)))
            stored.update({row.id: (row.customer, row.type) for row in rows})
        return stored

    def _with_tasks(
        self,
        conn: Connection,
        shape: RowShape,
        rows: list[Row],
        columns: TaskColumns,
        insert: Callable[[list[WriteStatus | None]], list[WriteStatus]],
        now_us: int,
        *,
        creates_tasks: bool = True,
    ) -> list[WriteStatus]:
        """Insert rows that name tasks: refuse a row whose task another customer owns, then
        create the tasks that accepted rows bring into being.

        A task belongs to the customer it was first stored with or, if new, to the first
        customer naming it in a row of this batch that can be accepted. The checks work on
        the batch's distinct (task, customer) pairs; only a batch with a foreign claim is
        scanned row by row.
        """
        task_at, customer_at = columns.task, columns.customer
        tasks = [row[task_at] for row in rows]
        customers = [row[customer_at] for row in rows]
        pairs = set(zip(tasks, customers, strict=True))
        stored = self._stored_tasks(conn, {task for task, _ in pairs if task is not None})
        # A new task's owner is the first customer naming it: zipping in reverse lets the
        # first occurrence overwrite the later ones.
        owners = dict(zip(reversed(tasks), reversed(customers), strict=True))
        owners.update({task: owner for task, (owner, _) in stored.items()})
        statuses: list[WriteStatus | None] = [None] * len(rows)
        if not creates_tasks:
            # An outcome claims a result of work already metered: its task must exist.
            for index, task in enumerate(tasks):
                if task is not None and task not in stored:
                    statuses[index] = WriteStatus(REJECTED, f"unknown task `{task}`", "task")
        if any(task is not None and owners[task] != customer for task, customer in pairs):
            owners = self._refuse_foreign(conn, shape, rows, columns, stored, statuses)
        result = insert(statuses)
        self._create_tasks(conn, rows, columns, result, stored, owners, now_us)
        return result

    def _refuse_foreign(
        self,
        conn: Connection,
        shape: RowShape,
        rows: list[Row],
        columns: TaskColumns,
        stored: dict[str, tuple[str, Any]],
        statuses: list[WriteStatus | None],
    ) -> dict[Any, Any]:
        """Refuse, in `statuses`, each row naming a task that another customer has by then;
        the owners of the tasks, stored or new.

        Rows are read in order. A new task is the customer's of the first row naming it that
        brings something into being: a repeat of a key stored or seen earlier (a duplicate
        or a conflict) does not, so the task it names stays nobody's.
        """
        key_length = shape.key_length
        taken = set(self._stored_content(conn, shape, rows))
        owners: dict[Any, Any] = {task: owner for task, (owner, _) in stored.items()}
        for index, row in enumerate(rows):
            if statuses[index] is not None:
                continue
            task, customer = row[columns.task], row[columns.customer]
            owner = owners.get(task)
            if task is not None and owner is not None and owner != customer:
                statuses[index] = WriteStatus(
                    REJECTED, f"task `{task}` belongs to another customer", "task"
                )
                continue
            key = row[:key_length]
            if key not in taken:
                taken.add(key)
                if task is not None and owner is None:
                    owners[task] = customer
        return owners

    def _create_tasks(
        self,
        conn: Connection,
        rows: list[Row],
        columns: TaskColumns,
        statuses: list[WriteStatus],
        stored: dict[str, tuple[str, Any]],
        owners: dict[Any, Any],
        now_us: int,
    ) -> None:
        """Create the tasks that accepted rows name, and type the untyped ones.

        A new task starts at the time of the first record naming it.
        """
        task_at, type_at, time_at = columns.task, columns.type, columns.time
        accepted = rows
        if statuses.count(ACCEPTED_STATUS) != len(statuses):
            accepted = [
                row for row, st in zip(rows, statuses, strict=True) if st is ACCEPTED_STATUS
            ]
        named = {row[task_at] for row in accepted}
        named.discard(None)
        # The first type given for a task wins (reversed, as for owners).
        types: dict[Any, Any] = {}
        if type_at is not None:
            types = {
                row[task_at]: row[type_at] for row in reversed(accepted) if row[type_at] is not None
            }
        new = {task: types.get(task) for task in sorted(named) if task not in stored}
        started = {row[task_at]: row[time_at] for row in reversed(accepted)} if new else {}
        typed = {
            task: kind for task, kind in types.items() if task in stored and stored[task][1] is None
        }
        if new:
            self._insert_tasks(
                conn,
                [
                    (task, owners[task], kind, "open", None, now_us, started[task])
                    for task, kind in new.items()
                ],
            )
        if typed:
            t = s.tasks.c
            conn.execute(
                update(s.tasks)
                .where(and_(t.id == bindparam("task"), t.type.is_(None)))
                .values(type=bindparam("type")),
                [{"task": task, "type": kind} for task, kind in typed.items()],
            )

    def _insert_tasks(self, conn: Connection, rows: list[Row]) -> None:
        """Insert new tasks (rows of TASK_COLUMNS, in id order); a task stored since it was
        found new stays as it is."""
        conn.exec_driver_sql(self._insert_sql("tasks", TASK_COLUMNS, ("id",)), rows)

    def _write_events(self, conn: Connection, batch: WriteBatch, now_us: int) -> list[WriteStatus]:
        rows = batch.events
        if not rows:
            return []
        return self._with_tasks(
            conn,
            EVENTS,
            rows,
            EVENT_TASK_COLUMNS,
            lambda statuses: self._insert_idempotent(conn, EVENTS, rows, statuses, now_us),
            now_us,
        )

    def _write_task_updates(
        self, conn: Connection, rows: list[Row], now_us: int
    ) -> list[WriteStatus]:
        result = self._with_tasks(
            conn,
            TASK_UPDATES,
            rows,
            TASK_UPDATE_TASK_COLUMNS,
            lambda statuses: self._insert_idempotent(conn, TASK_UPDATES, rows, statuses, now_us),
            now_us,
        )
        accepted = [row for row, status in zip(rows, result, strict=True) if status[0] == ACCEPTED]
        # Applied in time order, so the latest status wins whatever the order of the lines.
        for row in sorted(accepted, key=_status_order):
            self._apply_task_status(conn, row)
        return result

    def _apply_task_status(self, conn: Connection, row: Row) -> None:
        task, status, _, _, occurred_at_us = row
        t = s.tasks.c
        # The latest status wins; at the same instant a terminal status beats `open`.
        newer: ColumnElement[bool] = or_(
            t.status_at_us.is_(None),
            t.status_at_us < occurred_at_us,
            and_(t.status_at_us == occurred_at_us, t.status == "open"),
        )
        conn.execute(
            update(s.tasks)
            .where(and_(t.id == task, newer))
            .values(status=status, status_at_us=occurred_at_us)
        )

    def _write_outcomes(self, conn: Connection, rows: list[Row], now_us: int) -> list[WriteStatus]:
        return self._with_tasks(
            conn,
            OUTCOMES,
            rows,
            OUTCOME_TASK_COLUMNS,
            lambda statuses: self._insert_idempotent(conn, OUTCOMES, rows, statuses, now_us),
            now_us,
            creates_tasks=False,
        )

    def _write_attestations(
        self, conn: Connection, rows: list[Row], now_us: int
    ) -> list[WriteStatus]:
        statuses: list[WriteStatus | None] = [None] * len(rows)
        outcome_at = ATTESTATIONS.column_index("outcome")
        wanted = sorted({row[outcome_at] for row in rows})
        known: set[str] = set()
        for chunk in chunks(wanted):
            known.update(conn.scalars(select(s.outcomes.c.id).where(s.outcomes.c.id.in_(chunk))))
        for index, row in enumerate(rows):
            if row[outcome_at] not in known:
                statuses[index] = WriteStatus(
                    REJECTED, f"unknown outcome `{row[outcome_at]}`", "outcome"
                )
        return self._insert_idempotent(conn, ATTESTATIONS, rows, statuses, now_us)

    def _write_signals(self, conn: Connection, rows: list[Row], now_us: int) -> list[WriteStatus]:
        """Insert signals, each naming a known task or outcome (of the same task, when it
        names both); each row is stored with its customer and the task it is about."""
        if not rows:
            return []
        task_at, outcome_at = SIGNALS.column_index("task"), SIGNALS.column_index("outcome")
        o = s.outcomes.c
        claims: dict[str, tuple[str, str]] = {}
        for chunk in chunks(sorted({row[outcome_at] for row in rows} - {None})):
            found = conn.execute(select(o.id, o.task, o.customer).where(o.id.in_(chunk)))
            claims.update({row.id: (row.task, row.customer) for row in found})
        tasks = self._stored_tasks(conn, {row[task_at] for row in rows} - {None})
        statuses: list[WriteStatus | None] = [None] * len(rows)
        stored: list[Row] = []
        for index, row in enumerate(rows):
            about, refusal = _signal_subject(row[task_at], row[outcome_at], claims, tasks)
            statuses[index] = refusal
            stored.append((*row, *(about or ("", ""))))
        return self._insert_idempotent(conn, SIGNALS, stored, statuses, now_us)

    def _insert_idempotent(
        self,
        conn: Connection,
        shape: RowShape,
        rows: list[Row],
        statuses: list[WriteStatus | None],
        now_us: int,
    ) -> list[WriteStatus]:
        """Insert rows not yet stored, stamped `now_us`; classify the rest. `statuses` holds
        prior rejections."""
        if not rows:
            return []
        key_length, content = shape.key_length, shape.content_length
        sql = self._insert_sql(
            shape.table, shape.row_columns, shape.columns[:key_length], received_at_us=now_us
        )
        if _all_distinct(rows, key_length) and statuses.count(None) == len(rows):
            # The common batch: new ids only. One statement, and no per-row bookkeeping.
            savepoint = conn.begin_nested()
            if conn.exec_driver_sql(sql, _in_key_order(shape, rows)).rowcount == len(rows):
                savepoint.commit()
                return [ACCEPTED_STATUS] * len(rows)
            savepoint.rollback()
        first_index: dict[Row, int] = {}
        fresh: list[int] = []
        for index, row in enumerate(rows):
            if statuses[index] is not None:
                continue
            key = row[:key_length]
            if key in first_index:
                statuses[index] = _compare(shape, rows[first_index[key]][:content], row[:content])
            else:
                first_index[key] = index
                fresh.append(index)
        if not fresh:
            return _finished(statuses)
        fresh_rows = rows if len(fresh) == len(rows) else [rows[i] for i in fresh]
        savepoint = conn.begin_nested()
        inserted = conn.exec_driver_sql(sql, _in_key_order(shape, fresh_rows)).rowcount
        if inserted == len(fresh_rows):
            savepoint.commit()
            for index in fresh:
                statuses[index] = ACCEPTED_STATUS
            return _finished(statuses)
        savepoint.rollback()
        stored = self._stored_content(conn, shape, fresh_rows)
        fresh_indexes = set(fresh)
        new_rows = []
        for index, row in enumerate(rows):
            status = statuses[index]
            if status is not None and status[0] == REJECTED:
                continue
            stored_content = stored.get(row[:key_length])
            if stored_content is not None:
                statuses[index] = _compare(shape, stored_content, row[:content])
            elif index in fresh_indexes:
                statuses[index] = ACCEPTED_STATUS
                new_rows.append(row)
        if new_rows:
            conn.exec_driver_sql(sql, _in_key_order(shape, new_rows))
        return _finished(statuses)

    def _stored_content(self, conn: Connection, shape: RowShape, rows: list[Row]) -> dict[Row, Row]:
        """{key: stored content} for the rows' keys."""
        t = s.metadata.tables[shape.table]
        content = [t.c[name] for name in shape.columns[: shape.content_length]]
        found: dict[Row, Row] = {}
        for chunk in chunks(sorted({row[0] for row in rows})):
            for stored in conn.execute(select(*content).where(content[0].in_(chunk))):
                found[tuple(stored[: shape.key_length])] = tuple(stored)
        return found

    # -- the ledger's own figures ---------------------------------------------------------

    def counts(self) -> LedgerCounts:
        def count(table: Any, *where: ColumnElement[bool]) -> Any:
            return select(func.count()).select_from(table).where(*where).scalar_subquery()

        query = select(
            count(s.customers),
            count(s.events),
            count(s.events, s.events.c.cost_nanousd.is_(None)),
            count(s.tasks),
            count(s.outcomes),
            count(s.attestations),
        )
        with self.engine.connect() as conn:
            return LedgerCounts(*conn.execute(query).one())

    def rollup_mismatches(self) -> list[str]:
        with self.engine.connect() as conn:
            return rollups.mismatches(conn)

    def defer_checkpoints(self) -> bool:
        return False  # nothing to fold: a server-backed database does its own maintenance

    def checkpoint(self) -> None:
        return None

    def close(self) -> None:
        self.engine.dispose()


class _WriteGroup:
    """One write connection whose transaction spans batches until `rows` rows are in."""

    def __init__(self, store: SqlStore, rows: int) -> None:
        self.store, self.rows_max = store, rows
        self.conn: Connection | None = None
        self.transaction: Any = None
        self.rows = 0
        self.catalogs: set[int] = set()
        self.after_seq = 0
        """The store's `_events_mark` as this transaction began: the rollups add the events
        above it at the commit."""
        self.events_accepted = False
        """Whether a batch of this transaction accepted events (set by `_write_rows`)."""

    def write(
        self,
        batch: WriteBatch,
        clock: Callable[[], int],
        before_write: Callable[[WriteBatch], None] | None,
    ) -> WriteResult:
        if before_write is not None:
            # Its checks read through other connections, which see committed rows only:
            # the batches before it must be committed first.
            self.commit()
        if self.conn is None:
            self.conn = self.store._connect_for_write()
        if self.transaction is None:
            self.transaction = self.conn.begin()
            self.after_seq = self.store._events_mark(self.conn)
            self.events_accepted = False
        now_us = clock()  # under the write lock, as `SqlStore.write` reads it
        if before_write is not None:
            before_write(batch)
        result = self.store._write_rows(self.conn, batch, now_us)
        if batch.price_catalog is not None and batch.events:
            self.catalogs.add(batch.price_catalog.id)
        self.rows += len(batch)
        assert self.rows < rollups.MAX_TRANSACTION_ROWS, "the rollups sum one transaction's rows"
        if self.rows >= self.rows_max:
            self.commit()
        return result

    def commit(self) -> None:
        if self.transaction is not None:
            assert self.conn is not None
            if self.events_accepted:
                self.store._roll_up_events(self.conn, self.after_seq)
            self.transaction.commit()
            self.transaction, self.rows = None, 0
            self.store._catalogs_kept |= self.catalogs

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()  # a transaction still open is rolled back
            self.conn = None


def _signal_subject(
    task: str | None,
    outcome: str | None,
    claims: dict[str, tuple[str, str]],
    tasks: dict[str, tuple[str, Any]],
) -> tuple[tuple[str, str] | None, WriteStatus | None]:
    """(customer, task) a signal is about, or why it is refused."""
    if outcome is not None:
        claim = claims.get(outcome)
        if claim is None:
            return None, WriteStatus(REJECTED, f"unknown outcome `{outcome}`", "outcome")
        if task is not None and task != claim[0]:
            return None, WriteStatus(
                REJECTED, f"outcome `{outcome}` is a claim of task `{claim[0]}`", "task"
            )
        return (claim[1], claim[0]), None
    assert task is not None, "a decoded signal names a task or an outcome"
    if task not in tasks:
        return None, WriteStatus(REJECTED, f"unknown task `{task}`", "task")
    return (tasks[task][0], task), None


def _in_key_order(shape: RowShape, rows: list[Row]) -> list[Row]:
    """Event rows (of distinct ids) in the order of their ids, to be inserted so.

    Random ids (OpenTelemetry's, providers') land all over the unique index: inserted in
    their order, a batch walks the index once from end to end, each page read and dirtied
    while it is at hand, rather than hopping between pages at random (a third less CPU for
    the insert, bench/RESULTS.md). Only the order of `seq` within the batch changes, which
    no reader takes for a meaning: readers order events by their time and id.
    """
    if shape is not EVENTS or len(rows) < 2:
        return rows
    return sorted(rows, key=_first)


def _first(row: Row) -> Any:
    return row[0]


def _all_distinct(rows: list[Row], key_length: int) -> bool:
    if key_length == 1:
        return len({row[0] for row in rows}) == len(rows)
    return len({row[:key_length] for row in rows}) == len(rows)


def _status_order(row: Row) -> tuple[Any, bool]:
    return (row[TASK_UPDATE_TASK_COLUMNS.time], row[1] in FINAL_STATUSES)


def _accepted_values(rows: list[Row], statuses: list[WriteStatus], at: int) -> set[Any]:
    return {row[at] for row, status in zip(rows, statuses, strict=True) if status[0] == ACCEPTED}


# Columns whose record field has another name.
RECORD_FIELDS = {"cost_given_nanousd": "cost", "occurred_at_us": "time"}


def _compare(shape: RowShape, stored: Row, incoming: Row) -> WriteStatus:
    if stored == incoming:
        return DUPLICATE_STATUS
    differing = next(i for i, (a, b) in enumerate(zip(stored, incoming, strict=True)) if a != b)
    column = shape.columns[differing]
    field = RECORD_FIELDS.get(column, column)
    if column == "usage_details":
        field = _differing_detail(stored[differing], incoming[differing])
    return WriteStatus(CONFLICT, f"the same id was stored earlier with another `{field}`", field)


def _differing_detail(stored: str | None, incoming: str | None) -> str:
    """The first record field (in sorted order) whose detail differs between two
    `usage_details` texts (JSON objects of the non-zero details, or NULL)."""
    before, after = json.loads(stored or "{}"), json.loads(incoming or "{}")
    return str(
        min(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    )


def _finished(statuses: list[WriteStatus | None]) -> list[WriteStatus]:
    finished = [status for status in statuses if status is not None]
    assert len(finished) == len(statuses), "every row of a batch gets a status"
    return finished
