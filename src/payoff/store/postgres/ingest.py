"""Events into PostgreSQL through its fast path: binary COPY into a staging table, then
INSERT ... SELECT.

    batch rows ──COPY (binary)──▶ event_staging (temporary, per connection, emptied after use)
                              │
           the common batch: distinct ids, none stored (one savepoint)
                              ▼
        INSERT INTO event_ids SELECT id ... ORDER BY id                   (plain: no ON CONFLICT)
        INSERT INTO events SELECT every staged row ... RETURNING seq      (the lowest comes back)
        the rollups read event_staging itself, at the end of the transaction
                              │ a unique violation: rolled back to the savepoint, then
                              ▼ one statement:
        INSERT INTO event_ids SELECT id ... ON CONFLICT DO NOTHING RETURNING id   (fresh ids)
        INSERT INTO events SELECT the first row of each fresh id ... RETURNING *
        INSERT INTO new_events SELECT * FROM what events returned RETURNING id   (accepted)

The ids that land in `event_ids` are the accepted ones: its unique index decides, so two
writers sending one id at once store it once (the second waits for the first to commit, then
finds it there: a unique violation for the plain INSERT, which sends the batch down the
classifying path, or nothing inserted for ON CONFLICT). Every other row is classified against
what is stored, as SqlStore does on SQLite: the same content is a duplicate, other content a
conflict naming the first field that differs; a row repeated inside the batch is compared with
the batch's first one, which is what got stored. Rows go into `event_ids` in id order, so two
batches never wait on each other in a cycle.

The plain INSERT is the common batch's because it costs about half what ON CONFLICT DO
NOTHING does on the same unique index (a speculative insertion checks the index twice);
a batch with a stored id pays for both, which retries and overlapping senders make rare.

The rollups, at the end of the transaction (`PostgresStore._roll_up_events`), read the rows
this transaction accepted: the staging table when every staged row was (`Staged`), else the
copy kept in `payoff_new_events` (temporary, per connection). The events above the highest
seq before the transaction are not all its own when others write beside it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.exc import IntegrityError

from payoff.store import schema as s
from payoff.store.postgres.engine import UNIQUE_VIOLATION, sqlstate
from payoff.store.protocol import (
    ACCEPTED_STATUS,
    DUPLICATE_STATUS,
    EVENTS,
    Row,
    WriteStatus,
)

STAGING = "payoff_event_staging"
COLUMNS = EVENTS.row_columns
NEW_EVENTS = Table(
    "payoff_new_events", MetaData(), *(Column(column.name, column.type) for column in s.events.c)
)
"""The events this transaction accepted: a temporary table shaped like `events`."""
STAGED = Table(
    STAGING,
    MetaData(),
    Column("pos", Integer),
    *(Column(name, s.events.c[name].type) for name in COLUMNS),
)
"""The staging table: the events' columns but their seq and stamp, and each row's place."""
ACCEPTED_ROWS = "payoff_accepted_rows"
"""The connection's note (`Connection.info`) of where its transaction's accepted events are."""


class Staged(NamedTuple):
    """Every staged row was accepted, stamped `received_at_us`, given seqs from `first_seq`."""

    first_seq: int
    received_at_us: int


Compare = Callable[[Row, Row], WriteStatus]
StoredContent = Callable[[Connection, list[Row]], dict[Row, Row]]


def _ensure_staging(conn: Connection) -> None:
    """The session's staging table (temporary tables are per connection). Asked for in every
    batch, not remembered: a batch rolled back takes a table it created with it."""
    dialect = conn.dialect
    columns = ", ".join(
        f"{name} {s.events.c[name].type.compile(dialect=dialect)}" for name in COLUMNS
    )
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {STAGING} (pos integer, {columns})")
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE IF NOT EXISTS {NEW_EVENTS.name} (LIKE events)")
    conn.info[STAGING] = True


COPY_TYPES = {String: "varchar", Text: "text", BigInteger: "int8", Integer: "int4", Boolean: "bool"}
"""PostgreSQL's name of each column type staged, for COPY's binary format."""


def _copy_types() -> list[str]:
    return ["int4", *(COPY_TYPES[type(s.events.c[name].type)] for name in COLUMNS)]


def _copy_rows(conn: Connection, rows: Sequence[Row], positions: list[int]) -> None:
    """COPY the rows in binary: with the types given up front, psycopg writes each value
    without guessing its type or quoting it as text."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    columns = ", ".join(COLUMNS)
    with cursor.copy(f"COPY {STAGING} (pos, {columns}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(_copy_types())
        write_row = copy.write_row
        for position in positions:
            write_row((position, *rows[position]))


def _insert_sql(now_us: int, staged_rows: int) -> str:
    columns = ", ".join(COLUMNS)
    staged = ", ".join(f"staged.{name}" for name in COLUMNS)
    return (
        "WITH fresh AS ("
        f" INSERT INTO event_ids (id) SELECT id FROM {STAGING} ORDER BY id"
        " ON CONFLICT (id) DO NOTHING RETURNING id"
        f"), stored AS (INSERT INTO events ({columns}, received_at_us)"
        f" SELECT DISTINCT ON (staged.id) {staged}, {int(now_us)}"
        f" FROM {STAGING} AS staged JOIN fresh ON fresh.id = staged.id"
        " ORDER BY staged.id, staged.pos"
        " RETURNING *"
        f"), kept AS (INSERT INTO {NEW_EVENTS.name} SELECT * FROM stored RETURNING id)"
        # One row back: how many were accepted, and which ones only when not all were.
        f" SELECT count(*), CASE WHEN count(*) = {int(staged_rows)} THEN NULL"
        " ELSE array_agg(id) END FROM kept"
    )


def _insert_new_sql(now_us: int) -> tuple[str, str]:
    """The common batch's statements: distinct ids, none stored. A plain INSERT into
    `event_ids` costs about half what one with ON CONFLICT does, and every staged row goes
    on to `events` as it is, unsorted; the lowest seq given comes back. The ids
    go first: an id already known (one of a detached month's among them) fails the first
    statement, never the second."""
    columns = ", ".join(COLUMNS)
    return (
        f"INSERT INTO event_ids (id) SELECT id FROM {STAGING} ORDER BY id",
        f"WITH stored AS (INSERT INTO events ({columns}, received_at_us)"
        f" SELECT {columns}, {int(now_us)} FROM {STAGING} RETURNING seq"
        ") SELECT min(seq) FROM stored",
    )


def _inserted_as_new(conn: Connection, now_us: int) -> int | None:
    """The lowest seq of the staged rows, if they went in by the common batch's statements;
    None when one of their ids was stored (by then: a writer beside this one may have
    committed it while the statement waited), and nothing was written. (Any other error
    fails the batch.)"""
    savepoint = conn.begin_nested()
    try:
        ids, events = _insert_new_sql(now_us)
        conn.exec_driver_sql(ids)
        first_seq = int(conn.exec_driver_sql(events).scalar_one())
    except IntegrityError as exc:
        savepoint.rollback()
        if sqlstate(exc) != UNIQUE_VIOLATION:
            raise
        return None
    savepoint.commit()
    return first_seq


def accepted_rows(conn: Connection) -> Staged | None:
    """How the events the connection's transaction accepted are kept for its rollups:
    as staged (every staged row accepted), or None: in NEW_EVENTS."""
    staged = conn.info.pop(ACCEPTED_ROWS, None)
    return staged if isinstance(staged, Staged) else None


def copy_events(
    conn: Connection,
    rows: list[Row],
    statuses: list[WriteStatus | None],
    now_us: int,
    compare: Compare,
    stored_content: StoredContent,
) -> list[WriteStatus | None]:
    """Insert the rows not yet stored (those without a prior status), stamped `now_us`, and
    classify the others; returns every row's status."""
    positions = [index for index, status in enumerate(statuses) if status is None]
    if not positions:
        return statuses
    conn.info.pop(ACCEPTED_ROWS, None)
    _ensure_staging(conn)
    _copy_rows(conn, rows, positions)
    distinct = len({rows[index][0] for index in positions}) == len(positions)
    first_seq = _inserted_as_new(conn, now_us) if distinct else None
    if first_seq is not None:
        # Every staged row accepted: the rollups read them where they are (and empty it).
        conn.info[ACCEPTED_ROWS] = Staged(first_seq, now_us)
        count, ids = len(positions), None
    else:
        conn.info[ACCEPTED_ROWS] = None
        count, ids = conn.exec_driver_sql(_insert_sql(now_us, len(positions))).one()
        conn.exec_driver_sql(f"TRUNCATE {STAGING}")  # (a rolled-back batch leaves none either)
    if count == len(positions):  # every row new
        for index in positions:
            statuses[index] = ACCEPTED_STATUS
        return statuses
    accepted = set(ids or ())
    first: dict[Any, int] = {}
    others = []
    for index in positions:
        row_id = rows[index][0]
        if row_id in accepted and row_id not in first:
            first[row_id] = index
            statuses[index] = ACCEPTED_STATUS
        else:
            others.append(index)
    stored = stored_content(conn, [rows[index] for index in others])
    content = EVENTS.content_length
    for index in others:
        found = stored.get(rows[index][:1])
        # An id whose month was detached and archived: known, so never stored twice.
        statuses[index] = (
            DUPLICATE_STATUS if found is None else compare(found, rows[index][:content])
        )
    return statuses
