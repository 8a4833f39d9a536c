"""The spool file on its own: compaction keeps it small under steady load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from payoff.sdk import spool as spool_module
from payoff.sdk.spool import Spool


def batch(first: int, last: int) -> list[bytes]:
    return [json.dumps({"n": n, "pad": "x" * 80}).encode() for n in range(first, last)]


def numbers(records: list[bytes]) -> list[int]:
    return [json.loads(record)["n"] for record in records]


def test_an_acknowledged_prefix_is_compacted_away_and_the_rest_kept_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "COMPACT_MIN_BYTES", 2_000, raising=False)
    path = tmp_path / "spool-x.jsonl"
    spool = Spool(path)
    spool.append(batch(0, 5))
    for first in range(5, 500, 10):  # steady load: the sender stays 5 records behind the end
        spool.append(batch(first, first + 10))
        records, end = spool.read(10)
        spool.acknowledge(end)
    assert path.stat().st_size < 6_000  # without compaction: 50 * 10 records of ~100 bytes
    records, _ = spool.read(10_000)
    assert numbers(records) == list(range(500, 505))
    spool.close(delete_if_empty=False)
    again = Spool(path)  # a later Meter adopting it finds the same records, no more
    records, end = again.read(10_000)
    assert numbers(records) == list(range(500, 505))
    assert end == path.stat().st_size
    assert sorted(tmp_path.iterdir()) == [path, path.with_suffix(".offset")]  # no leftovers
    again.close(delete_if_empty=False)
