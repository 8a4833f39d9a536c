"""Events into PostgreSQL: COPY and one INSERT ... SELECT classify every row exactly as SQLite
does, and land in the partition of their month."""

from __future__ import annotations

import io
import random
from typing import Any

import pytest
from sqlalchemy import text

from factories import jsonl, task, usage
from payoff.core.errors import StoreError
from payoff.service import IngestReport, ingest_lines, numbered_lines
from payoff.store import open_store
from payoff.store.postgres.store import PostgresStore
from payoff.store.protocol import Store


def ingest(store: Store, records: list[dict[str, Any]]) -> IngestReport:
    return ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*records))))


def outcome_of(report: IngestReport) -> tuple[Any, ...]:
    problems = [(p.line, p.id, p.status, p.reason) for p in report.problems]
    return (report.counts(), problems)


def mixed_batches(seed: int) -> list[list[dict[str, Any]]]:
    """Batches with new ids, repeats (in a batch and across), conflicts on one field or
    another, tasks shared and foreign, over two months."""
    chance = random.Random(seed)
    batches = []
    for _ in range(4):
        batch = []
        for _ in range(120):
            number = chance.randrange(200)
            fields: dict[str, Any] = {
                "task": f"t{number % 17}",
                "customer": "acme" if number % 17 else "globex",
                "time": "2026-11-03T10:00:00Z" if number % 3 else "2026-12-01T00:00:00Z",
            }
            twist = chance.random()
            if twist < 0.1:
                fields["output_tokens"] = 301
            elif twist < 0.15:
                fields["model"] = "gpt-4o-mini"
            elif twist < 0.2:
                fields["customer"] = "initech"  # a task of another customer
            batch.append(usage(f"e{number}", **fields))
        batch.append(task(f"t{chance.randrange(17)}", "completed"))
        batches.append(batch)
    return batches


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_row_is_classified_as_on_sqlite(tmp_path: Any, postgres_url: str, seed: int) -> None:
    on_sqlite, on_postgres = open_store(tmp_path / "l.db"), open_store(postgres_url)
    try:
        for batch in mixed_batches(seed):
            expected = outcome_of(ingest(on_sqlite, batch))
            assert outcome_of(ingest(on_postgres, batch)) == expected
        assert on_postgres.counts() == on_sqlite.counts()
        assert on_postgres.tasks(limit=100) == on_sqlite.tasks(limit=100)
    finally:
        on_sqlite.close()
        on_postgres.close()


def partitions(store: PostgresStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        names = conn.execute(
            text(
                "SELECT child.relname FROM pg_inherits "
                "JOIN pg_class AS child ON child.oid = inhrelid "
                "JOIN pg_class AS parent ON parent.oid = inhparent WHERE parent.relname = 'events'"
            )
        ).scalars()
        return {
            name: conn.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in sorted(names)
        }


def test_events_land_in_the_partition_of_their_month(postgres_url: str) -> None:
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        ingest(store, [usage("e1"), usage("e2", time="2026-12-31T23:59:59.999999Z")])
        ingest(store, [usage("e3", time="2027-02-01T00:00:00Z")])
        assert partitions(store) == {
            "events_y2026m11": 1,
            "events_y2026m12": 1,
            "events_y2027m01": 0,  # the month after the newest, made ahead
            "events_y2027m02": 1,
            "events_y2027m03": 0,
        }
    finally:
        store.close()


def test_a_detached_month_keeps_its_ids_and_refuses_new_records(postgres_url: str) -> None:
    store = open_store(postgres_url)
    assert isinstance(store, PostgresStore)
    try:
        ingest(store, [usage("e1"), usage("e2", time="2026-12-02T00:00:00Z")])
        with store.engine.begin() as conn:
            conn.execute(text("ALTER TABLE events DETACH PARTITION events_y2026m11"))
        assert ingest(store, [usage("e1")]).counts()["duplicates"] == 1  # archived, not lost
        assert store.counts().events == 1
        reopened = open_store(postgres_url)  # a process that never saw November
        with pytest.raises(StoreError, match="events_y2026m11 is detached"):
            ingest(reopened, [usage("e9")])
        reopened.close()
    finally:
        store.close()


def test_batches_of_new_ids_and_batches_with_stored_ones_keep_the_rollups_exact(
    postgres_url: str,
) -> None:
    """A batch of new ids is rolled up from the staging table, one with a stored id from the
    rows it accepted; one after the other on one connection, the sums and the days match
    the events."""
    store = open_store(postgres_url)
    try:
        batches = [
            [usage(f"n{number}", task=f"t{number % 5}") for number in range(30)],
            [
                *(usage(f"n{number}", task=f"t{number % 5}") for number in range(25, 35)),
                usage("n3", task="t3", output_tokens=999),  # a conflict
            ],
            [usage(f"m{number}", task=f"u{number % 3}") for number in range(20)],
        ]
        counts = [ingest(store, batch).counts() for batch in batches]
        assert [(c["accepted"], c["duplicates"], c["conflicts"]) for c in counts] == [
            (30, 0, 0),
            (5, 5, 1),
            (20, 0, 0),
        ]
        assert store.rollup_mismatches() == []
        assert isinstance(store, PostgresStore)
        with store.engine.connect() as conn:
            days = conn.execute(text("SELECT day, first_seq, last_received_us FROM rollup_days"))
            events = conn.execute(
                text(
                    "SELECT received_at_us / 86400000000, min(seq), max(received_at_us) "
                    "FROM events GROUP BY 1"
                )
            )
            assert sorted(days.all()) == sorted(events.all())
    finally:
        store.close()


def test_an_id_stored_by_another_writer_while_a_batch_waits_is_not_stored_twice(
    postgres_url: str,
) -> None:
    """Another writer holds an id a batch of new ids brings; once it commits, the batch's
    plain INSERT fails on it, and the batch goes through the classifying statement: that id
    is known (a duplicate), the others are accepted, each stored once."""
    import threading

    import psycopg

    store = open_store(postgres_url)
    other = psycopg.connect(postgres_url.replace("postgresql+psycopg://", "postgresql://"))
    try:
        other.execute("INSERT INTO event_ids (id) VALUES ('w2')")  # uncommitted: held
        reports: list[IngestReport] = []
        batch = [usage(f"w{number}") for number in range(5)]
        writer = threading.Thread(target=lambda: reports.append(ingest(store, batch)))
        writer.start()
        writer.join(timeout=0.5)  # the batch waits for `other` on w2
        other.commit()
        writer.join()
        assert reports[0].counts()["accepted"] == 4
        assert reports[0].counts()["duplicates"] == 1
        assert isinstance(store, PostgresStore)
        with store.engine.connect() as conn:
            stored = conn.execute(text("SELECT id FROM events ORDER BY id")).scalars().all()
            ids = conn.execute(text("SELECT count(*) FROM event_ids")).scalar_one()
        assert stored == ["w0", "w1", "w3", "w4"]
        assert ids == 5
        assert store.rollup_mismatches() == []
    finally:
        other.close()
        store.close()
