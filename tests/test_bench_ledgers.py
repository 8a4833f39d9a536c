"""The benchmarks' cached ledgers are brought to this payoff's schema before anything is timed."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
from alembic import command

from payoff import demo
from payoff.store.opening import _alembic_config, packaged_head, stored_revision
from payoff.store.sqlite import SqliteStore

sys.path.insert(0, str(Path(__file__).parents[1]))
from bench import rating  # the repository root, on the path from the line above


def test_a_ledger_cached_by_an_older_payoff_is_migrated_before_it_is_timed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rating, "WORK", tmp_path)
    source = hashlib.blake2b(Path(demo.__file__).read_bytes(), digest_size=4).hexdigest()
    cached = tmp_path / f"rating-10-{source}.db"
    engine = SqliteStore(cached).engine
    config = _alembic_config()
    with engine.connect() as conn, conn.begin():
        config.attributes["connection"] = conn
        command.upgrade(config, "0010")  # as a payoff before the rollups left it
        conn.exec_driver_sql(
            "INSERT INTO events (id, customer, occurred_at_us, received_at_us, kind,"
            " input_tokens, cache_read_tokens, cache_write_tokens, output_tokens,"
            " reasoning_tokens, visible, batch) VALUES ('e1', 'c1', 1, 7, 'llm', 5, 0, 0, 3,"
            " 0, 1, 0)"
        )
    engine.dispose()

    path, as_of_us = rating.ledger(10, log=lambda line: None)

    assert path == cached
    engine = SqliteStore(path).engine
    try:
        assert stored_revision(engine) == packaged_head()
    finally:
        engine.dispose()
    assert as_of_us == 8
