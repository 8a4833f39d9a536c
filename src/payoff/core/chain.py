"""The hash chain of finalized documents, and the seal that links each one into it.

Every invoice and credit note, when it is finalized, is sealed: its document gains its
number, the moment it was issued, and the digest of the document finalized before it in the
ledger (one chain per ledger, in the order of finalization). The seal is part of the stored
text, so a document's digest covers its link: editing, removing or reordering any finalized
document breaks the link of the one after it.

    chain entry n:  digest(n) = sha256 of document n's stored text (canonical JSON, seal in)
                    document n's seal.previous = digest(n - 1), or GENESIS for the first

A document's body before it was sealed is the draft that was checked: `unsealed()` on an
invoice gives back the bytes whose digest finalizing compared.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payoff.core.canonical import check_keys, text_field

GENESIS = "sha256:" + "0" * 64
"""What the first document of a ledger's chain names as the one before it."""

CHAIN_KINDS = ("invoice", "credit_note")
"""What a chain entry links: an invoice or a credit note."""

SEAL_KEYS = {"number", "issued_at", "previous"}
SEAL_OPTIONAL = {"records_digest", "issuer_digest"}


@dataclass(frozen=True)
class Seal:
    """What finalizing adds to a document."""

    number: str
    issued_at: str
    """RFC 3339, UTC: when the document was finalized (an invoice) or issued (a note)."""
    previous: str
    """The digest of the document finalized before it in the ledger, or GENESIS."""
    records_digest: str | None = None
    """An invoice's: the digest of the ledger rows it was computed from (core.ledger_rows)."""
    issuer_digest: str | None = None
    """An invoice's: the digest of the issuer's details kept with it."""

    def to_json_value(self) -> dict[str, Any]:
        value = {"number": self.number, "issued_at": self.issued_at, "previous": self.previous}
        if self.records_digest is not None:
            value["records_digest"] = self.records_digest
        if self.issuer_digest is not None:
            value["issuer_digest"] = self.issuer_digest
        return value

    @classmethod
    def from_json_value(cls, value: object) -> Seal:
        check_keys(value, SEAL_KEYS, SEAL_OPTIONAL, "seal")
        assert isinstance(value, Mapping)
        optional = {key: text_field(value, key) for key in SEAL_OPTIONAL if key in value}
        return cls(
            number=text_field(value, "number"),
            issued_at=text_field(value, "issued_at"),
            previous=text_field(value, "previous"),
            **optional,
        )


@dataclass(frozen=True)
class ChainEntry:
    """One link of the chain as the ledger keeps it: its place, what it links, the digest."""

    seq: int
    """From 1, without gaps."""
    kind: str
    """One of CHAIN_KINDS."""
    document: str
    """The invoice's or credit note's id."""
    digest: str
