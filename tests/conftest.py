from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from payoff.service import IngestReport, ingest_lines, numbered_lines
from payoff.store import open_store
from payoff.store.protocol import Store

REPO = Path(__file__).resolve().parents[1]
NOV_3 = "2026-11-03T10:00:00Z"
NOV_3_US = int(dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC).timestamp()) * 10**6


def usage(id: str, **fields: Any) -> dict[str, Any]:
    """A valid usage record with sensible defaults, overridden by `fields`."""
    record: dict[str, Any] = {
        "id": id,
        "time": NOV_3,
        "customer": "acme",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1200,
        "output_tokens": 300,
    }
    record.update(fields)
    return {k: v for k, v in record.items() if v is not None}


def jsonl(*records: dict[str, Any] | bytes) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else msgspec.json.encode(r)) + b"\n" for r in records
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(tmp_path / "ledger.db")
    yield opened
    opened.close()


@pytest.fixture
def ingest(store: Store) -> Callable[..., IngestReport]:
    def run(*records: dict[str, Any] | bytes) -> IngestReport:
        return ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*records))))

    return run
