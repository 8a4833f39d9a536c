"""The benchmark workload: JSON Lines files of exactly N demo usage records, cached by N.

Files live under bench/.work/ (gitignored) so repeated runs reuse them. The demo generator
is deterministic, and a file's name carries a digest of its source, so a cached file is the
file a fresh run would write.

Ids: the demo's are sequential (`t0000001-03`). Real clients send others, and a unique index
pays for random keys as it grows, so a workload can carry the ids they send (`IDS`):
`random`, 128-bit random hex as OpenTelemetry's span ids and provider response ids are;
`mixed`, a third each of random, UUIDv7 (time-ordered, as payoff's SDK makes them) and
sequential. They are drawn from a seeded generator: the same file every time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from payoff import demo
from payoff.demo import generate

WORK = Path(__file__).parent / ".work"
SEED = 7
MONTH = "2026-11"
CUSTOMERS = 6
ID_KINDS = {
    "sequential": "the demo's own, `t0000001-03`",
    "random": "128-bit random hex, as OpenTelemetry span ids and provider response ids",
    "mixed": "a third each of 128-bit random hex, UUIDv7 and the demo's sequential ones",
}
IDS = tuple(ID_KINDS)
ID_SEED = 15
SCALE_STEP = 1.01
"""Grow the scale by this much until the demo yields N records: the cut-off tail stays small."""


def _usage(scale: float, llm_only: bool) -> Iterator[dict[str, Any]]:
    for record in generate(seed=SEED, customers=CUSTOMERS, month=MONTH, scale=scale):
        if "record" in record:  # task and outcome records are not usage
            continue
        if llm_only and record["kind"] != "llm":
            continue
        yield record


def uuid7(unix_ms: int, rng: random.Random) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of milliseconds, then random bits, version and variant."""
    value = (unix_ms & (1 << 48) - 1) << 80 | rng.getrandbits(80)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10
    return str(uuid.UUID(int=value))


def _with_ids(records: Iterator[dict[str, Any]], ids: str) -> Iterator[dict[str, Any]]:
    """The records with the ids `ids` says (see the module docstring)."""
    if ids == "sequential":
        yield from records
        return
    rng = random.Random(ID_SEED)
    for index, record in enumerate(records):
        kind = "random" if ids == "random" else ("random", "uuid7", "sequential")[index % 3]
        if kind == "random":
            record["id"] = f"{rng.getrandbits(128):032x}"
        elif kind == "uuid7":
            moment = dt.datetime.fromisoformat(record["time"].replace("Z", "+00:00"))
            record["id"] = uuid7(int(moment.timestamp() * 1000), rng)
        yield record


def path_for(records: int, *, llm_only: bool = False, ids: str = "sequential") -> Path:
    """The workload file of `records` usage records (model calls only with `llm_only`), with
    the ids `ids` says."""
    assert ids in IDS, ids
    stem = f"{'llm' if llm_only else 'usage'}-{records}"
    stem += "" if ids == "sequential" else f"-{ids}"
    source = hashlib.blake2b(Path(demo.__file__).read_bytes(), digest_size=4).hexdigest()
    path = WORK / f"{stem}-{source}.jsonl"
    if path.exists():
        return path
    WORK.mkdir(exist_ok=True)
    for stale in WORK.glob(f"{stem}-*.jsonl"):  # written by an older demo generator
        stale.unlink()
    # One generate() call, scaled to just over N, rather than several seeds: task ids
    # ("t0000001") do not embed the seed, so a second seed would reuse them under other
    # customers. Scaling to just N keeps the smallest customers, which the demo yields last.
    scale = records / sum(1 for _ in _usage(1.0, llm_only))
    partial = path.with_suffix(f".tmp{os.getpid()}")
    while not _write(partial, _with_ids(_usage(scale, llm_only), ids), records):
        scale *= SCALE_STEP
    partial.replace(path)  # atomic: a half-written file is never taken for a cached one
    return path


def _write(path: Path, records: Iterator[dict[str, Any]], count: int) -> bool:
    """Write the first `count` records as JSON Lines; False when there are fewer."""
    encode = msgspec.json.encode
    written = 0
    with path.open("wb") as out:
        for record in records:
            if written == count:
                break
            out.write(encode(record) + b"\n")
            written += 1
    return written == count
