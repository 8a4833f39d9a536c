"""Canonical JSON: keys sorted, no spaces. The same value is the same text, so stored
documents and the digests taken of plans and inputs do not depend on dict order.

Also the strict field readers the document codecs (invoice, credit note) decode with: a
stored document either reads back whole or is refused with DocumentError.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from payoff.core.errors import Refused


def canonical_json(value: object, default: Callable[[object], object] | None = None) -> str:
    """A value as canonical JSON text; `default` converts what JSON cannot hold (else it is
    refused with TypeError)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=default)


def digest(value: object) -> str:
    """sha256 of a value's canonical JSON (anything JSON cannot hold, as its str): what an
    invoice records of its plan and inputs."""
    return text_digest(canonical_json(value, default=str))


def text_digest(text: str) -> str:
    """sha256 of a text as it is stored (UTF-8): what a stored document is known by."""
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


class DocumentError(Refused, ValueError):
    """A billing document (invoice, credit note) whose JSON does not hold together: a field
    missing, unknown or of the wrong type, or totals that do not add up."""


def typed_field(document: Mapping[str, Any], key: str, kind: type[Any]) -> Any:
    """A field of a given JSON type (a bool is not an int)."""
    value = document.get(key)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise DocumentError(f"{key}: expected {kind.__name__}, got {value!r}")
    return value


def text_field(document: Mapping[str, Any], key: str) -> str:
    text: str = typed_field(document, key, str)
    return text


def decimal_field(document: Mapping[str, Any], key: str) -> Decimal:
    try:
        value = Decimal(text_field(document, key))
    except InvalidOperation:
        raise DocumentError(f"{key}: not a decimal: {document[key]!r}") from None
    if not value.is_finite():
        raise DocumentError(f"{key}: not a finite decimal: {document[key]!r}")
    return value


def optional_int_field(document: Mapping[str, Any], key: str) -> int | None:
    if key not in document:
        return None
    number: int = typed_field(document, key, int)
    return number


def check_keys(document: object, required: set[str], optional: set[str], what: str) -> None:
    """Refuse a document with a key missing or unknown: what is not read is not written
    back, and a document must come back to the same bytes."""
    if not isinstance(document, Mapping):
        raise DocumentError(f"{what}: expected an object, got {document!r}")
    missing = sorted(required - set(document))
    unknown = sorted(set(document) - required - optional)
    if missing or unknown:
        raise DocumentError(f"{what}: missing {missing}, unknown {unknown}")
