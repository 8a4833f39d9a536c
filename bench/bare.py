"""The bare baseline for ingest, run in its own process: sqlite3 `executemany` of prepared rows.

Run as `python -m bench.bare FILE FOLDER`. It builds the event rows of FILE with payoff's own
RowBuilder (so they match the ledger's rows exactly), prints `ready`, then for each `run` line
on stdin inserts them into a fresh SQLite file in FOLDER and prints the seconds taken.

It is a separate process because Linux carries a parent's peak RSS over into each child it
starts: were these rows held by the process that starts `payoff ingest`, the child's
measured peak RSS would include them.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from payoff.catalog import Catalog
from payoff.records import decode_record
from payoff.rows import RowBuilder
from payoff.service import BATCH_RECORDS
from payoff.store import open_store
from payoff.store.protocol import EVENT_COLUMNS, Row, WriteBatch


def event_rows(path: Path) -> list[Row]:
    """The ledger rows payoff would write for the usage records of a JSON Lines file."""
    batch = WriteBatch()
    builder = RowBuilder(Catalog())
    with path.open("rb") as lines:
        for number, line in enumerate(lines, start=1):
            builder.add(batch, decode_record(line, number), number)
    return batch.events


def events_ddl(folder: Path) -> list[str]:
    """CREATE statements of the ledger's events table (and any index on it), from a real one."""
    ledger = folder / "schema.db"
    open_store(ledger).close()
    with sqlite3.connect(ledger) as conn:
        found = conn.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'events' AND sql IS NOT NULL "
            "ORDER BY type DESC"  # the table before its indexes
        )
        return [sql for (sql,) in found]


def insert_seconds(batches: list[list[Row]], ddl: list[str], folder: Path) -> float:
    """Seconds to insert the batches into a fresh file, one transaction each, as payoff."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        conn = sqlite3.connect(Path(scratch) / "bare.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        for sql in ddl:
            conn.execute(sql)
        # As payoff: the receipt time is one literal per statement, not a row value.
        received = time.time_ns() // 1000
        insert = (
            f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in EVENT_COLUMNS[:-1])}, {received})"
        )
        start = time.perf_counter()
        for batch in batches:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(insert, batch)
            conn.execute("COMMIT")
        conn.close()  # closing checkpoints the WAL, as payoff's exit does
        return time.perf_counter() - start


def main(path: Path, folder: Path) -> None:
    rows = event_rows(path)
    batches = [rows[i : i + BATCH_RECORDS] for i in range(0, len(rows), BATCH_RECORDS)]
    ddl = events_ddl(folder)
    print("ready", len(rows), flush=True)
    for command in sys.stdin:
        assert command.strip() == "run", command
        print(f"{insert_seconds(batches, ddl, folder):.6f}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
