"""One of several processes ingesting into one PostgreSQL ledger at once (test_postgres_writers).

    python tests/postgres_writers.py URL BATCHES.json REPORT.json

BATCHES.json is a list of batches (lists of records); each is ingested in a call of its own,
so each is a transaction of its own, interleaved with the other processes' ones. REPORT.json
gets the counts and every problem (id, status, reason). The writer opens the ledger, writes
REPORT.json.ready and waits for a file `go` beside it, so that all writers start together.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

from factories import jsonl
from payoff.service import IngestReport, ingest_lines, numbered_lines
from payoff.store import open_store

START_TIMEOUT_S = 60


def main(url: str, batches_path: str, report_path: str) -> None:
    batches = json.loads(Path(batches_path).read_text())
    store = open_store(url)
    report = IngestReport()
    Path(report_path + ".ready").touch()
    go = Path(report_path).parent / "go"
    deadline = time.monotonic() + START_TIMEOUT_S
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        for batch in batches:
            ingest_lines(store, numbered_lines(io.BytesIO(jsonl(*batch))), report=report, workers=0)
    finally:
        store.close()
    problems = [{"id": p.id, "status": p.status, "reason": p.reason} for p in report.problems]
    Path(report_path).write_text(json.dumps({"counts": report.counts(), "problems": problems}))


if __name__ == "__main__":
    main(*sys.argv[1:4])
