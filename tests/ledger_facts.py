"""What a ledger holds, read straight from its SQLite file, to compare two ledgers.

Two ledgers that were sent the same records must hold the same facts, whatever crashes
and re-sends happened on the way: the same rows in every record table (the receiving
time aside), the same tasks, the same cost per task and the same tokens in each bucket per
customer. `differences` says how two sets of facts differ, a line per difference.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from record_streams import Key

# Every column a record decides; `received_at_us` (and a task's creation times, which
# follow the order records arrive in) are the ledger's own and left out.
FACT_QUERIES = {
    "events": """SELECT id, occurred_at_us, customer, task, task_type, kind, provider, model,
        input_tokens, cache_read_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
        visible, batch, quantity, unit, cost_given_nanousd, cost_nanousd, cost_visible_nanousd,
        cost_source, attributes FROM events""",
    "task_updates": "SELECT task, status, customer, type, occurred_at_us FROM task_updates",
    "outcomes": """SELECT id, task, customer, type, value, evidence_digest, occurred_at_us
        FROM outcomes""",
    "attestations": "SELECT id, outcome, verdict, occurred_at_us FROM attestations",
    "tasks": "SELECT id, customer, type, status, status_at_us FROM tasks",
    "cost per task": """SELECT task, count(*), sum(cost_nanousd), sum(cost_visible_nanousd),
        count(*) - count(cost_nanousd) FROM events GROUP BY task""",
    "tokens per bucket": """SELECT customer, sum(input_tokens), sum(cache_read_tokens),
        sum(cache_write_tokens), sum(output_tokens), sum(reasoning_tokens)
        FROM events GROUP BY customer""",
}
KEY_QUERIES = {
    "usage": "SELECT id FROM events",
    "task": "SELECT task, status FROM task_updates",
    "outcome": "SELECT id FROM outcomes",
    "attestation": "SELECT id FROM attestations",
}
MAX_DIFFERENCES = 20
"""Differences listed per comparison; the rest are counted."""

Facts = dict[str, set[tuple[Any, ...]]]


def _connect(db: Path) -> sqlite3.Connection:
    # Read-only, so that looking never changes what a crashed process left behind.
    return sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)


def ledger_facts(db: Path) -> Facts:
    with _connect(db) as conn:
        return {name: set(conn.execute(query)) for name, query in FACT_QUERIES.items()}


def stored_keys(db: Path) -> list[Key]:
    """The key of every record stored, as record_streams.record_key gives it; [] before the
    ledger has its tables."""
    if not db.exists():
        return []
    keys: list[Key] = []
    try:
        with _connect(db) as conn:
            for kind, query in KEY_QUERIES.items():
                keys.extend((kind, *row) for row in conn.execute(query))
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # killed before the ledger had its tables: nothing stored
        raise
    return keys


def integrity(db: Path) -> str:
    with _connect(db) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


def differences(expected: Facts, got: Facts) -> list[str]:
    """Each row one side holds and the other does not, as `table: missing|extra row`."""
    lines: list[str] = []
    count = 0
    for name in FACT_QUERIES:
        for label, rows in (
            ("missing", expected[name] - got[name]),
            ("extra", got[name] - expected[name]),
        ):
            for row in sorted(rows, key=repr):
                count += 1
                if len(lines) < MAX_DIFFERENCES:
                    lines.append(f"{name}: {label} {row!r}")
    if count > len(lines):
        lines.append(f"... and {count - len(lines)} more differences")
    return lines
