"""A real `payoff serve` on loopback: crash safety under load, and OpenTelemetry exports."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import httpx
import msgspec

from api_support import Keys, live_server, prepare_ledger, start_server, usage

BATCH = 1_000
CLIENTS = 3


def batch_of(client: int, number: int) -> list[dict]:
    return [
        usage(f"c{client}-b{number}-{i}", task=f"c{client}-t{number}", model="gpt-4o-mini")
        for i in range(BATCH)
    ]


def stored_ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM events")]


def test_a_kill_mid_batch_loses_nothing_acknowledged_and_a_retry_adds_nothing_twice(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys: Keys = prepare_ledger(db)
    server = start_server(db, log)
    acknowledged: list[tuple[int, int]] = []
    failed_in_flight: list[tuple[int, int]] = []
    enough = threading.Event()

    def client(number: int) -> None:
        with httpx.Client(base_url=server.url, headers=keys.header(keys.ingest)) as http:
            for batch in range(200):
                body = msgspec.json.encode(batch_of(number, batch))
                try:
                    response = http.post("/v1/events", content=body, timeout=30)
                except httpx.TransportError:
                    failed_in_flight.append((number, batch))
                    return
                assert response.status_code == 200
                assert response.json()["accepted"] == BATCH
                acknowledged.append((number, batch))
                if len(acknowledged) >= 6:
                    enough.set()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    assert enough.wait(timeout=120), log.read_text()[-2000:]
    server.kill()
    for thread in threads:
        thread.join(timeout=60)
    assert failed_in_flight, "the kill should have cut requests in flight"

    stored = set(stored_ids(db))
    for number, batch in acknowledged:
        assert {r["id"] for r in batch_of(number, batch)} <= stored
    # A batch is one transaction: it is all there or not at all.
    for number, batch in failed_in_flight:
        ids = {r["id"] for r in batch_of(number, batch)}
        assert ids <= stored or not ids & stored

    with (
        live_server(db, log) as restarted,
        httpx.Client(base_url=restarted.url, headers=keys.header(keys.ingest)) as http,
    ):
        for number, batch in acknowledged + failed_in_flight:
            body = msgspec.json.encode(batch_of(number, batch))
            answer = http.post("/v1/events", content=body, timeout=30).json()
            assert answer["rejected"] == answer["conflicts"] == 0
            if (number, batch) in acknowledged:
                assert answer["duplicates"] == BATCH
    ids = stored_ids(db)
    assert len(ids) == len(set(ids)) == BATCH * (len(acknowledged) + len(failed_in_flight))
