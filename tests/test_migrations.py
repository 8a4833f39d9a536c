"""Migrations: the write-only outcomes.status column is gone, and old ledgers keep their rows."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, inspect, text

from payoff.store import _alembic_config, open_store


def columns(path: Path, table: str) -> list[str]:
    engine = create_engine(f"sqlite:///{path}")
    try:
        return [c["name"] for c in inspect(engine).get_columns(table)]
    finally:
        engine.dispose()


def test_a_new_ledger_has_no_outcome_status_column(tmp_path: Path) -> None:
    open_store(tmp_path / "new.db").close()
    assert "status" not in columns(tmp_path / "new.db", "outcomes")


def test_a_ledger_with_outcomes_migrates_and_keeps_them(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0004")
        conn.execute(
            text(
                "INSERT INTO outcomes (id, task, customer, type, value, evidence_digest, status,"
                " occurred_at_us, received_at_us) VALUES"
                " ('o1', 't1', 'acme', 'resolved', '12.50', NULL, 'claimed', 10, 11),"
                " ('o2', 't2', 'acme', 'resolved', NULL, 'sha256:ab', 'claimed', 20, 21)"
            )
        )
    engine.dispose()
    assert "status" in columns(path, "outcomes")

    store = open_store(path)
    try:
        found = store.get_outcomes(["o1", "o2"])  # type: ignore[attr-defined]
    finally:
        store.close()
    assert "status" not in columns(path, "outcomes")
    assert sorted((o.id, o.task, str(o.value), o.evidence_digest) for o in found.values()) == [
        ("o1", "t1", "12.50", None),
        ("o2", "t2", "None", "sha256:ab"),
    ]
    assert [o.claimed_at_us for o in sorted(found.values())] == [10, 20]


def test_a_ledger_with_events_gains_record_format_v2_and_cost_provenance(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    engine = create_engine(f"sqlite:///{path}")
    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0006")
        conn.execute(
            text(
                "INSERT INTO events (id, occurred_at_us, received_at_us, customer, kind,"
                " provider, model, input_tokens, cache_read_tokens, cache_write_tokens,"
                " output_tokens, reasoning_tokens, visible, batch, cost_nanousd,"
                " cost_visible_nanousd, cost_source) VALUES"
                " ('e1', 10, 11, 'acme', 'llm', 'openai', 'gpt-4o', 1000, 0, 0, 100, 0, 0, 0,"
                " 3500, 0, 'catalog'),"
                " ('e2', 20, 21, 'acme', 'llm', 'lab', 'mystery', 1000, 0, 0, 100, 0, 0, 0,"
                " NULL, NULL, NULL)"
            )
        )
    engine.dispose()

    store = open_store(path)
    try:
        counts = store.counts()
    finally:
        store.close()
    assert (counts.events, counts.unpriced_events) == (2, 1)
    for table in ("price_catalogs", "superseded_costs"):
        assert columns(path, table)
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, cost_nanousd, usage_details, cost_catalog, costed_at_us"
                    " FROM events ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()
    # Costs set before stay as they were; what produced them was not recorded then.
    assert [tuple(row) for row in rows] == [
        ("e1", 3500, None, None, None),
        ("e2", None, None, None, None),
    ]
