"""Evidence commitments: the canonical form and digest, opened over HTTP by the customer (or
an admin), checked against the commitment, passed to a judge run as a local command, kept
only when the contract says; a wrong opening refused and flagged."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import payoff
from contract_support import billed, ingest, invoice, ledger, plan_text, this_month
from factories import REPO, outcome, tool_usage
from payoff.api import ServerConfig, create_app
from payoff.cli import app
from payoff.core.evidence import EvidenceError, canonical_evidence, evidence_digest
from payoff.service import access, contracts, integrity, outcomes, plans
from payoff.service import evidence as openings
from payoff.service.outcomes import OutcomeError
from payoff.store.protocol import Store

JUDGE = REPO / "tests" / "judges" / "resolution_judge.py"
SALT = "5f0c6b8e2a9d4e1f8c7b6a5d4e3f2a1b"
EVIDENCE = {"transcript_sha256": "9f2c4e", "resolved": True, "turns": 4, "agent": "Zoë"}
runner = CliRunner()


def test_the_canonical_form_and_the_digest_are_the_documented_ones() -> None:
    assert canonical_evidence(EVIDENCE) == (
        b'{"agent":"Zo\\u00eb","resolved":true,"transcript_sha256":"9f2c4e","turns":4}'
    )
    # The worked example of docs/contracts.md, to the byte.
    assert evidence_digest(EVIDENCE, SALT) == DOCUMENTED_DIGEST
    page = (REPO / "docs" / "contracts.md").read_text()
    assert DOCUMENTED_DIGEST in page and SALT in page
    assert canonical_evidence(EVIDENCE).decode() in page
    commitment = payoff.commit_evidence(EVIDENCE)
    assert len(commitment.salt) == 32 and commitment.digest == evidence_digest(
        EVIDENCE, commitment.salt
    )
    assert payoff.commit_evidence(EVIDENCE).salt != commitment.salt  # a fresh salt each time


DOCUMENTED_DIGEST = "sha256:e25e672c133e73d4cbe59c51a0f1d7516d5ac6073527f19f235f93409074639c"


@pytest.mark.parametrize(
    ("evidence", "salt", "message"),
    [
        ({"score": 0.5}, SALT, "evidence.score: float has no canonical form"),
        ({"n": 2**53}, SALT, "evidence.n: an integer beyond 2^53 - 1"),
        ([1, 2], SALT, "evidence is a JSON object"),
        ({"a": 1}, "short", "salt: 32 to 128 lowercase hexadecimal characters"),
        ({"a": 1}, SALT.upper(), "salt: 32 to 128 lowercase hexadecimal characters"),
    ],
)
def test_evidence_without_a_canonical_form_is_refused(
    evidence: object, salt: str, message: str
) -> None:
    with pytest.raises(EvidenceError, match=message.replace("^", "\\^")):
        evidence_digest(evidence, salt)


def resolution_with_evidence(retain: bool) -> str:
    return f"""id: support.automated_resolution
version: 1
outcome: ticket.resolved
unit: {{singular: automated resolution, plural: automated resolutions}}
evidence: [transcript_sha256, resolved]
retain_evidence: {"true" if retain else "false"}
verification:
  inactivity: 72h
  judge: {{command: [{json.dumps(sys.executable)}, {json.dumps(str(JUDGE))}], timeout: 20s}}
"""


def committed(store: object, *claims: tuple[str, str, dict[str, object]]) -> None:
    records: list[dict[str, object]] = []
    for n, (customer, claim, evidence) in enumerate(claims):
        records += [
            tool_usage(f"u{n}", task=f"t{n}", time="2026-10-01T00:00:00Z", customer=customer),
            outcome(
                claim, f"t{n}", customer, time="2026-10-02T00:00:00Z", value=None,
                evidence_digest=evidence_digest(evidence, SALT),
            ),
        ]  # fmt: skip
    assert ingest(store, *records).clean  # type: ignore[arg-type]


@pytest.mark.slow
def test_a_committed_evidence_opened_to_a_judge_and_a_wrong_opening_refused(
    tmp_path: Path,
) -> None:
    store = ledger(tmp_path, resolution_with_evidence(retain=False))
    unresolved = {**EVIDENCE, "resolved": False}
    partial = {"transcript_sha256": "77aa01"}
    committed(
        store,
        ("c", "o1", EVIDENCE), ("c", "o2", unresolved), ("c", "o3", EVIDENCE), ("c", "o4", partial),
    )  # fmt: skip
    store.add_customer("d", None, 0)
    keys = {scope: access.create_key(store, scope)[1] for scope in ("customer:c", "customer:d")}
    store.close()
    with TestClient(create_app(ServerConfig(str(tmp_path / "l.db"), builders=0))) as client:

        def opening(claim: str, key: str, evidence: object, salt: str = SALT) -> object:
            return client.post(
                f"/v1/outcomes/{claim}/evidence",
                json={"evidence": evidence, "salt": salt},
                headers={"Authorization": f"Bearer {keys[key]}"},
            )

        accepted = opening("o1", "customer:c", EVIDENCE)
        assert accepted.status_code == 200, accepted.text
        answer = accepted.json()
        assert (answer["matched"], answer["retained"]) == (True, False)
        assert answer["judge"] == {
            "ran": True, "verdict": "accept", "reason": "transcript 9f2c4e: resolved=True"
        }  # fmt: skip
        assert answer["outcome"]["status"] == "verified"
        assert answer["outcome"]["steps"][-1]["by"] == "judge"
        rejected = opening("o2", "customer:c", unresolved).json()
        assert (rejected["judge"]["verdict"], rejected["outcome"]["status"]) == (
            "reject",
            "rejected",
        )
        # A wrong opening (another evidence, or another salt) is refused and flagged.
        wrong = opening("o3", "customer:c", unresolved)
        assert wrong.status_code == 422
        assert "do not match its commitment" in wrong.json()["detail"]
        assert "refused and flagged" in wrong.json()["detail"]
        assert opening("o3", "customer:c", EVIDENCE, salt="0" * 32).status_code == 422
        assert opening("o3", "customer:c", {"x": 1}).status_code == 422
        # Another customer's key finds no such outcome; evidence lacking a field the contract
        # requires is refused, though it matches its commitment.
        assert opening("o3", "customer:d", EVIDENCE).status_code == 404
        lacking = opening("o4", "customer:c", partial)
        assert lacking.status_code == 422
        assert "the evidence lacks resolved" in lacking.json()["detail"]
    store = payoff.open_store(tmp_path / "l.db")
    assert billed(invoice(store, this_month(), finalize=False)) == [
        (this_month(), "outcomes", "1", "0.99")
    ]
    (row,) = integrity.report(store, "2026-10")
    assert row.stats.evidence_mismatches == 3
    assert "evidence_mismatch" in [f.name for f in row.flags]
    with sqlite3.connect(tmp_path / "l.db") as conn:
        kept = conn.execute(
            "SELECT outcome, matched, by, evidence FROM evidence_openings ORDER BY seq"
        ).fetchall()
    assert kept == [
        ("o1", 1, "customer:c", None),  # the contract does not retain evidence
        ("o2", 1, "customer:c", None),
        ("o3", 0, "customer:c", None),
        ("o3", 0, "customer:c", None),
        ("o3", 0, "customer:c", None),
    ]


@pytest.mark.slow
def test_evidence_is_retained_when_the_contract_says_and_opened_from_the_cli(
    tmp_path: Path,
) -> None:
    store = ledger(tmp_path, resolution_with_evidence(retain=True))
    committed(store, ("c", "o1", EVIDENCE))
    file = tmp_path / "opening.json"
    file.write_text(json.dumps({"evidence": EVIDENCE, "salt": SALT}))
    result = runner.invoke(
        app, ["--db", str(tmp_path / "l.db"), "outcomes", "evidence", "o1", str(file)]
    )
    assert result.exit_code == 0, result.output
    assert "evidence matched; verified; judge: accept" in result.stdout
    (opening,) = store.evidence_openings(["o1"])["o1"]
    assert (opening.matched, opening.by) == (True, "cli")
    assert opening.evidence == canonical_evidence(EVIDENCE).decode()


def test_an_outcome_without_a_commitment_has_nothing_to_open(tmp_path: Path) -> None:
    store = ledger(tmp_path, resolution_with_evidence(retain=False))
    ingest(
        store,
        tool_usage("u1", task="t1", time="2026-10-01T00:00:00Z", customer="c"),
        outcome("o1", "t1", "c", time="2026-10-02T00:00:00Z", value=None),
    )
    file = tmp_path / "opening.json"
    file.write_text(json.dumps({"evidence": EVIDENCE, "salt": SALT}))
    result = runner.invoke(
        app, ["--db", str(tmp_path / "l.db"), "outcomes", "evidence", "o1", str(file)]
    )
    assert isinstance(result.exception, OutcomeError)  # `payoff` exits 2 with its message
    assert "o1 carries no evidence commitment" in str(result.exception)


def test_the_auditor_sees_the_evidence_opened_while_the_claim_waits_for_review(
    store: Store, ledger_target: str
) -> None:
    """legal.document_reviewed keeps no evidence, and samples doc-7 for audit: its opening
    is held for the auditor (`payoff outcomes show`) until the auditor decides, then
    forgotten. An opening of a claim outside the sample is not kept."""
    contracts.apply_contract_text(
        store, (REPO / "examples/contracts/legal.document_reviewed.yaml").read_text(), "legal"
    )
    plans.apply_plan_text(
        store, plan_text("legal.document_reviewed@1", "document.reviewed", "45"), "plan"
    )
    plans.subscribe(store, "c", "by-contract", dt.date(2026, 9, 1))
    opened = {"document_sha256": "ab12", "issues_found": 3}
    salt = "7a1e2d3c4b5a69788796a5b4c3d2e1f0"
    records = []
    for claim in ("doc-7", "doc-1"):
        records += [
            tool_usage(f"u-{claim}", task=f"t-{claim}", time="2026-10-01T00:00:00Z", customer="c"),
            outcome(claim, f"t-{claim}", "c", time="2026-10-02T00:00:00Z", value=None,
                    type="document.reviewed", evidence_digest=evidence_digest(opened, salt)),
        ]  # fmt: skip
    assert ingest(store, *records).clean
    answer = openings.open_evidence(store, "doc-7", opened, salt, "customer:c")
    assert answer["outcome"]["audited"] is True
    assert (answer["retained"], answer["held_for_audit"]) == (False, True)
    shown = openings.show_outcome(store, "doc-7")["evidence"]
    assert shown["evidence"] == opened and shown["held_for_audit"] is True
    assert shown["opened_by"] == "customer:c"
    printed = CliRunner().invoke(app, ["--db", ledger_target, "outcomes", "show", "doc-7"])
    assert printed.exit_code == 0, printed.output
    assert "(in the audit sample)" in printed.output
    assert "evidence opened by customer:c" in printed.output
    assert '"issues_found": 3' in printed.output
    other = openings.open_evidence(store, "doc-1", opened, salt, "customer:c")
    assert other["held_for_audit"] is False
    assert openings.show_outcome(store, "doc-1")["evidence"] is None
    assert [o.evidence for o in store.evidence_openings(["doc-1"])["doc-1"]] == [None]
    outcomes.decide(store, "doc-7", "verify", "auditor", "checked the issues")
    assert openings.show_outcome(store, "doc-7")["evidence"] is None
    assert [o.evidence for o in store.evidence_openings(["doc-7"])["doc-7"]] == [None]
