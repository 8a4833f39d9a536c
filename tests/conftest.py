from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from factories import jsonl
from payoff.service import IngestReport, ingest_lines, numbered_lines
from payoff.store import open_store
from payoff.store.protocol import Store


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
