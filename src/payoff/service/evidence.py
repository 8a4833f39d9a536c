"""Opening an outcome's committed evidence: checked against the commitment, passed to the
judge its contract names, and kept only when the contract says so.

    evidence + salt ──▶ sha256(salt + canonical evidence) == the outcome's evidence_digest?
        no  ──▶ kept as a mismatched opening (a flag in the integrity report), refused
        yes ──▶ the contract's evidence fields present? ──▶ kept as an opening (with the
                evidence only when `retain_evidence`) ──▶ the judge, when one is due

The customer opens its own outcomes' evidence (a `customer:ID` key), or an operator any
(an `admin` key, or the command line). Nothing else ever holds the evidence: it is kept with
its opening when the contract retains it, or held for the auditor while a claim in the audit
sample waits for review (`payoff outcomes show` shows it then), and forgotten once the
auditor has decided.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from payoff.core.evidence import COMMITMENT, canonical_evidence, evidence_digest, missing_fields
from payoff.core.periods import iso_from_us
from payoff.service.clock import now_us
from payoff.service.judges import JudgeFailed, judge_outcome
from payoff.service.outcomes import (
    OutcomeError,
    OutcomeNotFound,
    OutcomeState,
    states,
    under_review,
)
from payoff.store.evidence import EvidenceOpening
from payoff.store.protocol import VerifyingStore


class EvidenceMismatch(OutcomeError):
    """An opening whose evidence and salt are not those the outcome committed to: refused,
    and kept as a flag."""


def open_evidence(
    store: VerifyingStore,
    outcome_id: str,
    evidence: Mapping[str, Any],
    salt: str,
    by: str,
    customer: str | None = None,
) -> dict[str, Any]:
    """Open an outcome's evidence (as `by`; a customer's key only for its own outcomes).

    Answers the outcome as it stands after, whether the evidence was kept, and what the
    judge did (None when the contract names none). A judge that fails leaves the claim
    pending: the opening stands, and it may be opened again to judge it again.
    """
    found = store.get_outcomes([outcome_id]).get(outcome_id)
    if found is None or (customer is not None and found.customer != customer):
        raise OutcomeNotFound(f"no outcome {outcome_id!r}")
    commitment = found.evidence_digest
    if commitment is None or not COMMITMENT.fullmatch(commitment):
        raise OutcomeError(
            f"outcome {outcome_id} carries no evidence commitment (sha256: and 64 hex digits) "
            "to open"
        )
    opened_at = now_us()
    if evidence_digest(evidence, salt) != commitment:
        reason = "the evidence and salt do not match the commitment"
        store.add_evidence_opening(EvidenceOpening(outcome_id, False, by, reason, None, opened_at))
        raise EvidenceMismatch(
            f"outcome {outcome_id}: the evidence and salt opened do not match its commitment "
            f"{commitment}; the opening is refused and flagged"
        )
    (state,) = states(store, [found], opened_at)
    contract = state.policy.contract
    missing = missing_fields(evidence, contract.evidence) if contract is not None else []
    if missing:
        raise OutcomeError(
            f"outcome {outcome_id}: the evidence lacks {', '.join(missing)}, which contract "
            f"{contract.reference if contract else ''} requires"
        )
    retained = contract is not None and contract.retain_evidence
    held = under_review(state)
    kept = canonical_evidence(evidence).decode() if retained or held else None
    store.add_evidence_opening(EvidenceOpening(outcome_id, True, by, None, kept, opened_at))
    judged = None
    if contract is not None and contract.rule.judge is not None:
        judged = _judge(store, outcome_id, evidence)
        (state,) = states(store, [found], now_us())
    return {
        "outcome": state.as_json(), "matched": True, "retained": retained,
        "held_for_audit": held, "judge": judged,
    }  # fmt: skip


def shown_evidence(store: VerifyingStore, state: OutcomeState) -> dict[str, Any] | None:
    """The evidence an operator (the auditor) sees with an outcome: the last matched
    opening's, when the contract retains it or while the claim waits for its auditor."""
    contract = state.policy.contract
    if contract is None or not (contract.retain_evidence or under_review(state)):
        return None
    openings = store.evidence_openings([state.outcome.id]).get(state.outcome.id, [])
    kept = [o for o in openings if o.matched and o.evidence is not None]
    if not kept:
        return None
    last = kept[-1]
    return {
        "evidence": json.loads(last.evidence or "null"),
        "opened_by": last.by,
        "opened_at": iso_from_us(last.opened_at_us),
        "held_for_audit": not contract.retain_evidence,
    }


def show_outcome(store: VerifyingStore, outcome_id: str) -> dict[str, Any]:
    """One outcome as an operator sees it: its steps, and the evidence opened to it when it
    is shown (`shown_evidence`)."""
    found = store.get_outcomes([outcome_id]).get(outcome_id)
    if found is None:
        raise OutcomeNotFound(f"no outcome {outcome_id!r}")
    (state,) = states(store, [found], now_us())
    return {**state.as_json(), "evidence": shown_evidence(store, state)}


def _judge(store: VerifyingStore, outcome_id: str, evidence: Mapping[str, Any]) -> dict[str, Any]:
    """What the judge made of an opened evidence: its verdict, its failure, or why it was not
    asked (the claim is decided, audited, or not due yet)."""
    try:
        state = judge_outcome(store, outcome_id, evidence)
    except JudgeFailed as exc:
        return {"ran": True, "verdict": None, "reason": str(exc)}
    except OutcomeError as exc:
        return {"ran": False, "verdict": None, "reason": str(exc)}
    step = state.lifecycle.last_step
    verdict = "accept" if state.lifecycle.status == "verified" else "reject"
    return {"ran": True, "verdict": verdict, "reason": step.reason}
