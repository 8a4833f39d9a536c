"""What verifying finds: each mismatch named by document, what differs, expected and found.

Two checks are pure and live here: where two documents differ, field by field, and whether
the chain of finalized documents holds (`core.chain`): every place taken once and in order,
every document present and unedited since it was chained, each seal naming the digest of
the document chained before it, and every finalized document chained.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from payoff.core.canonical import canonical_json, text_digest
from payoff.core.chain import GENESIS, ChainEntry


@dataclass(frozen=True)
class Mismatch:
    """One thing that is not as it was issued."""

    document: str
    """What it is about: "INV-2026-000001 (acme-2026-11)", "chain entry 4", "the ledger"."""
    what: str
    """What differs: "total", "fees[2](tokens).amount", "seal.previous", "document digest"."""
    expected: str
    found: str

    def __str__(self) -> str:
        return f"{self.document}: {self.what}: expected {self.expected}, found {self.found}"


def _shown(value: object) -> str:
    if value is _ABSENT:
        return "nothing"
    return value if isinstance(value, str) else canonical_json(value)


_ABSENT = object()


def document_mismatches(document: str, expected: object, found: object) -> list[Mismatch]:
    """Where two JSON values differ, field by field (a line of `fees` named by its index and
    charge); none when they are equal."""
    found_at: list[Mismatch] = []
    _differences(document, "", expected, found, found_at)
    return found_at


def _differences(document: str, path: str, expected: Any, found: Any, into: list[Mismatch]) -> None:
    if isinstance(expected, Mapping) and isinstance(found, Mapping):
        for key in sorted(set(expected) | set(found)):
            where = f"{path}.{key}" if path else key
            _differences(document, where, expected.get(key, _ABSENT), found.get(key, _ABSENT), into)
        return
    if isinstance(expected, list) and isinstance(found, list):
        for index in range(max(len(expected), len(found))):
            left = expected[index] if index < len(expected) else _ABSENT
            right = found[index] if index < len(found) else _ABSENT
            _differences(document, _item(path, index, left, right), left, right, into)
        return
    if expected != found:
        into.append(Mismatch(document, path or "document", _shown(expected), _shown(found)))


def _item(path: str, index: int, left: object, right: object) -> str:
    named = left if isinstance(left, Mapping) else right
    charge = named.get("charge") if isinstance(named, Mapping) else None
    return f"{path}[{index}]" + (f"({charge})" if isinstance(charge, str) else "")


@dataclass(frozen=True)
class Chained:
    """A finalized document as the ledger holds it, for checking the chain."""

    kind: str
    id: str
    label: str
    """How a person knows it: its number and id."""
    text: str


def chain_mismatches(entries: Sequence[ChainEntry], documents: Sequence[Chained]) -> list[Mismatch]:
    """Every way the chain does not hold; none when it is whole."""
    stored = {(d.kind, d.id): d for d in documents}
    mismatches: list[Mismatch] = []
    previous, sealed_before, next_seq = GENESIS, False, 1
    for entry in sorted(entries, key=lambda e: e.seq):
        document = stored.get((entry.kind, entry.document))
        named = document.label if document is not None else f"{entry.kind} {entry.document}"
        label = f"chain entry {entry.seq} ({named})"
        if entry.seq != next_seq:
            gap = _removed(next_seq, entry.seq - 1)
            mismatches.append(Mismatch(label, "place", str(next_seq), f"{entry.seq}: {gap}"))
        next_seq = entry.seq + 1
        if document is None:
            mismatches.append(Mismatch(label, "document", "stored", "missing: removed"))
            previous = entry.digest
            continue
        digest = text_digest(document.text)
        if digest != entry.digest:
            mismatches.append(Mismatch(label, "document digest", entry.digest, f"{digest}: edited"))
        seal = _seal(document.text)
        if seal is None and sealed_before:
            mismatches.append(Mismatch(label, "seal", "a seal", "none"))
        elif seal is not None:
            sealed_before = True
            if seal.get("previous") != previous:
                mismatches.append(
                    Mismatch(label, "seal.previous", previous, _shown(seal.get("previous")))
                )
        previous = entry.digest
    chained = {(entry.kind, entry.document) for entry in entries}
    for document in documents:
        if (document.kind, document.id) not in chained:
            mismatches.append(Mismatch(document.label, "chain", "an entry", "none"))
    return mismatches


def _removed(first: int, last: int) -> str:
    return f"entry {first} removed" if first == last else f"entries {first} to {last} removed"


def _seal(text: str) -> Mapping[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    seal = value.get("seal") if isinstance(value, Mapping) else None
    return seal if isinstance(seal, Mapping) else None
