"""The benchmark workload: JSON Lines files of exactly N demo usage records, cached by N.

Files live under bench/.work/ (gitignored) so repeated runs reuse them. The demo generator
is deterministic, and a file's name carries a digest of its source, so a cached file is the
file a fresh run would write.
"""

from __future__ import annotations

import hashlib
import os
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
SCALE_STEP = 1.01
"""Grow the scale by this much until the demo yields N records: the cut-off tail stays small."""


def _usage(scale: float, llm_only: bool) -> Iterator[dict[str, Any]]:
    for record in generate(seed=SEED, customers=CUSTOMERS, month=MONTH, scale=scale):
        if "record" in record:  # task and outcome records are not usage
            continue
        if llm_only and record["kind"] != "llm":
            continue
        yield record


def path_for(records: int, *, llm_only: bool = False) -> Path:
    """The workload file of `records` usage records (model calls only with `llm_only`)."""
    stem = f"{'llm' if llm_only else 'usage'}-{records}"
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
    while not _write(partial, _usage(scale, llm_only), records):
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
