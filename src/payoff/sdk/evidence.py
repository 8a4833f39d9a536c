"""Evidence commitments made where the evidence is: the outcome carries the digest, the
customer keeps the evidence and the salt (to open them for an audit or a judge).

    commitment = payoff.commit_evidence({"conversation_id": "c_91", "resolved": True})
    task.outcome("ticket.resolved", evidence_digest=commitment.digest)
    # keep commitment.salt with the evidence

The canonical form and the digest are `payoff.core.evidence`'s (docs/contracts.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payoff.core.evidence import evidence_digest

SALT_BYTES = 16


@dataclass(frozen=True)
class Commitment:
    """A salted commitment: `digest` goes on the outcome; `salt` stays with the evidence."""

    digest: str
    salt: str


def commit_evidence(evidence: Mapping[str, Any], salt: str | None = None) -> Commitment:
    """Commit to an evidence object, with a fresh random salt unless one is given."""
    chosen = salt if salt is not None else secrets.token_hex(SALT_BYTES)
    return Commitment(evidence_digest(evidence, chosen), chosen)


__all__ = ["Commitment", "commit_evidence", "evidence_digest"]
