"""Evidence commitments: an outcome carries a salted digest of its evidence, and the
evidence itself stays with the customer until it is opened for an audit or a judge.

    evidence_digest = "sha256:" + hex(sha256(salt + canonical(evidence)))

`salt` is 32 to 128 lowercase hexadecimal characters (16 bytes of randomness or more), taken
as its ASCII bytes; `canonical(evidence)` is the UTF-8 encoding of the evidence (a JSON
object) written canonically:

- an object as `{` members `}`, sorted by key (by Unicode code point), each `"key":value`,
  separated by `,`, with no white space anywhere;
- an array as `[` values `]` in order, separated by `,`;
- a string between `"`, with `"` and `\\` escaped by a backslash, `\\b \\f \\n \\r \\t` for
  those characters, and every other character outside U+0020..U+007E as `\\uXXXX` (four
  lowercase hex digits; a character above U+FFFF as its UTF-16 surrogate pair);
- an integer in plain decimal (a `-` for negatives, no leading zeros), from -(2^53 - 1) to
  2^53 - 1; numbers with a fraction or exponent are refused (write them as strings);
- `true`, `false` and `null`.

This is the text of Python's `json.dumps(evidence, sort_keys=True, separators=(",", ":"))`,
which `canonical_evidence` checks the value against before writing it. docs/contracts.md
shows a worked example; the SDK's `payoff.commit_evidence` computes it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from payoff.core.canonical import canonical_json
from payoff.core.errors import Refused

SALT = re.compile(r"[0-9a-f]{32,128}")
COMMITMENT = re.compile(r"sha256:[0-9a-f]{64}")
MAX_SAFE_INTEGER = 2**53 - 1
MAX_EVIDENCE_DEPTH = 64
"""Levels of objects and arrays, the evidence object itself being one: every JSON payoff
reads has this bound (`payoff.nesting`)."""


class EvidenceError(Refused, ValueError):
    """Evidence that has no canonical form, a malformed salt, or an opening that does not
    match its commitment; the message says which."""


def canonical_evidence(evidence: object) -> bytes:
    """The canonical bytes of an evidence object (see the module's docstring)."""
    if not isinstance(evidence, Mapping):
        raise EvidenceError("evidence is a JSON object")
    _check(evidence, "evidence", 1)
    return canonical_json(evidence).encode()


def _check(value: object, where: str, depth: int) -> None:
    if depth > MAX_EVIDENCE_DEPTH:
        raise EvidenceError(f"{where}: evidence nests deeper than {MAX_EVIDENCE_DEPTH} levels")
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise EvidenceError(f"{where}: an integer beyond 2^53 - 1; write it as a string")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EvidenceError(f"{where}: object keys are text")
            _check(item, f"{where}.{key}", depth + 1)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{where}[{index}]", depth + 1)
        return
    raise EvidenceError(
        f"{where}: {type(value).__name__} has no canonical form; numbers with a fraction "
        "are written as strings"
    )


def evidence_digest(evidence: object, salt: str) -> str:
    """The commitment an outcome carries: sha256 of the salt and the canonical evidence."""
    if not isinstance(salt, str) or not SALT.fullmatch(salt):
        raise EvidenceError("salt: 32 to 128 lowercase hexadecimal characters")
    return "sha256:" + hashlib.sha256(salt.encode() + canonical_evidence(evidence)).hexdigest()


def missing_fields(evidence: Mapping[str, Any], required: tuple[str, ...]) -> list[str]:
    """The fields a contract requires that the evidence does not hold."""
    return [name for name in required if name not in evidence]


def matches(commitment: str, evidence: object, salt: str) -> bool:
    """Whether an opening (evidence and salt) is the one the commitment was made of."""
    return evidence_digest(evidence, salt) == commitment
