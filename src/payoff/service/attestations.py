"""A customer's signed verdict over HTTP: checked, then written like any attestation record.

The checks, in order: the body is one attestation record; its outcome exists and belongs
to the caller (customer keys); the signature matches one of the outcome's customer's
current secrets with a timestamp within the tolerance; the verdict's own time is within the
tolerance of the signed timestamp (so a signed verdict cannot be back-dated); its id was
never received before (a replay changes nothing and is refused); the outcome's lifecycle
allows it.
"""

from __future__ import annotations

from typing import Any

from payoff.catalog import Catalog
from payoff.core.errors import (
    Conflict,
    NotFound,
    RecordError,
    Refused,
    SignatureError,
    Unauthorized,
)
from payoff.core.periods import US_PER_SECOND, to_us
from payoff.core.signatures import TOLERANCE_S, verify
from payoff.records import AttestationRecord, decode_record
from payoff.service.access import current_secrets
from payoff.service.clock import now_us
from payoff.service.ingest import build_batch
from payoff.service.writer import LedgerWriter
from payoff.store.protocol import ACCEPTED, AttestationStore

MAX_ATTESTATION_BYTES = 64 * 1024


class AttestationRefused(Refused):
    """A signed verdict was refused: malformed, or out of its outcome's lifecycle order.

    The subclasses are the other checks: the outcome is unknown, the signature fails, the
    verdict was already received.
    """


class AttestedOutcomeNotFound(NotFound, AttestationRefused):
    """The verdict names no outcome the caller may see."""


class AttestationUnsigned(Unauthorized, AttestationRefused):
    """The verdict's signature cannot be trusted."""


class AttestationReplayed(Conflict, AttestationRefused):
    """The verdict's id was received before: a replay changes nothing."""


def _record(body: bytes) -> AttestationRecord:
    try:
        record = decode_record(body)
    except RecordError as exc:
        raise AttestationRefused(str(exc)) from None
    if not isinstance(record, AttestationRecord):
        raise AttestationRefused("the body must be one attestation record")
    return record


def receive(
    store: AttestationStore,
    writer: LedgerWriter,
    catalog: Catalog,
    body: bytes,
    signature: str | None,
    only_customer: str | None,
) -> dict[str, Any]:
    """Check and write one signed verdict; raise AttestationRefused saying why not."""
    record = _record(body)
    outcome = store.get_outcomes([record.outcome]).get(record.outcome)
    if outcome is None or (only_customer is not None and outcome.customer != only_customer):
        raise AttestedOutcomeNotFound(f"no outcome {record.outcome!r}")
    now_s = now_us() // US_PER_SECOND
    try:
        signed_at_s = verify(signature, body, current_secrets(store, outcome.customer), now_s)
    except SignatureError as exc:
        raise AttestationUnsigned(str(exc)) from None
    if abs(to_us(record.time) // US_PER_SECOND - signed_at_s) > TOLERANCE_S:
        raise AttestationRefused(
            f"field `time`: a signed verdict's time must be within {TOLERANCE_S} s "
            "of its signature's timestamp",
        )
    if store.stored_attestations([record.id]):
        raise AttestationReplayed(f"attestation {record.id!r} was already received")
    batch, problems = build_batch(catalog, None, [(1, body)])
    if problems:
        raise AttestationRefused(problems[0].reason)
    written = writer.write(batch)
    if written.refused:
        raise AttestationRefused(written.refused[0][2])
    ((status, reason, _),) = written.result.attestations
    if status != ACCEPTED:  # the same id arrived at the same moment by another request
        raise AttestationReplayed(reason or f"attestation {record.id!r} was already received")
    return {
        "id": record.id,
        "outcome": record.outcome,
        "verdict": record.verdict,
        "status": ACCEPTED,
    }
