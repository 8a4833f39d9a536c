"""The standard units of examples/contracts/, each with a test vector: records in, invoices
out (tests/contract_vectors/*.yaml), step by step.

A vector names its contract (a file of examples/contracts/), the plan's unit price, the
tasks its claims are made on, and steps, each one of:

    ingest: [records]          records in (an outcome's `commit: {evidence, salt}` becomes
      rejected: [fields]       its evidence_digest); every record lands but those refused
    invoice: {period, lines, finalize}   the customer's invoice: (period billed, units,
                               amount) per line; `now` is the current month
    statuses: {outcome: status}
    open: {outcome, evidence, salt, expect, verdict, reason, refused}   evidence opened
    decide: {outcome, action, by}        an auditor's verdict
    flags: {period: [flag]}    flags the integrity report raises
    clock: TIME | real         payoff's clock reads TIME from here on (records are received
                               then, judges run then), or the real time again

A vector with a judge runs it as a real local command: marked slow. After the last step,
every finalized invoice re-derives from its rows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from clock_support import set_clock
from contract_support import billed, ingest, invoice, ledger, this_month
from factories import REPO, tool_usage
from payoff.core.evidence import evidence_digest
from payoff.core.periods import us_from_iso
from payoff.service import evidence, integrity, outcomes
from payoff.service.outcomes import OutcomeError
from payoff.service.verify import verify_ledger
from payoff.store.protocol import Store

VECTORS = REPO / "tests" / "contract_vectors"
CONTRACTS = REPO / "examples" / "contracts"
EXAMPLE_JUDGE = "[python3, ./judges/resolution_judge.py]"


def contract_text(vector: dict[str, Any]) -> str:
    """The example contract, its judge command made runnable from any directory (or the
    vector's own judge put in its place)."""
    text = (CONTRACTS / vector["contract"]).read_text()
    python = sys.executable
    example = f"[{python}, {REPO / 'examples/contracts/judges/resolution_judge.py'}]"
    text = text.replace(EXAMPLE_JUDGE, example)
    override = vector.get("judge")
    if override:
        command = f"[{python}, {REPO / override['command']}]"
        text = re.sub(
            r"  judge:\n    command: .*\n    timeout: .*\n",
            f"  judge:\n    command: {command}\n    timeout: {override['timeout']}\n",
            text,
        )
    return text


def _period(label: str) -> str:
    return this_month() if label == "now" else label


class Run:
    """One vector's ledger and what its steps committed to."""

    def __init__(
        self, tmp_path: Path, vector: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        self.monkeypatch = monkeypatch
        self.store: Store = ledger(tmp_path, contract_text(vector), price=vector["price"])
        self.commits: dict[str, dict[str, Any]] = {}
        tasks = [
            tool_usage(f"u-{task}", task=task, time="2026-09-01T00:00:00Z", customer="c")
            for task in vector["tasks"]
        ]
        assert ingest(self.store, *tasks).clean

    def ingest(self, records: list[dict[str, Any]], rejected: list[str]) -> None:
        sent = []
        for record in records:
            record = dict(record)
            commit = record.pop("commit", None)
            if commit is not None:
                self.commits[record["id"]] = commit
                record["evidence_digest"] = evidence_digest(commit["evidence"], commit["salt"])
            if record["record"] == "outcome":
                record.setdefault("customer", "c")
                record.setdefault("type", self.outcome_type)
            sent.append(record)
        report = ingest(self.store, *sent)
        assert [p.field for p in report.problems] == rejected, report.problems

    @property
    def outcome_type(self) -> str:
        (contract,) = self.store.list_contracts()
        return contract.outcome

    def invoice(self, step: dict[str, Any]) -> None:
        document = invoice(self.store, _period(step["period"]), step.get("finalize", True))
        expected = [(_period(p), "outcomes", units, amount) for p, units, amount in step["lines"]]
        assert billed(document) == expected

    def statuses(self, expected: dict[str, str]) -> None:
        found = {s.outcome.id: s.lifecycle.status for s in outcomes.list_states(self.store)}
        assert {claim: found[claim] for claim in expected} == expected

    def open(self, step: dict[str, Any]) -> None:
        committed = self.commits[step["outcome"]]
        given = step.get("evidence", committed["evidence"])
        salt = step.get("salt", committed["salt"])
        if "refused" in step:
            with pytest.raises(OutcomeError, match=step["refused"]):
                evidence.open_evidence(self.store, step["outcome"], given, salt, "admin")
            return
        answer = evidence.open_evidence(self.store, step["outcome"], given, salt, "admin")
        assert answer["outcome"]["status"] == step["expect"]
        judge = answer["judge"] or {}
        assert judge.get("verdict") == step.get("verdict")
        assert step.get("reason", "") in (judge.get("reason") or "")

    def decide(self, step: dict[str, Any]) -> None:
        outcomes.decide(self.store, step["outcome"], step["action"], step["by"], None)

    def clock(self, moment: str) -> None:
        set_clock(self.monkeypatch, None if moment == "real" else us_from_iso(moment))

    def flags(self, expected: dict[str, list[str]]) -> None:
        for period, names in expected.items():
            raised = {f.name for row in integrity.report(self.store, period) for f in row.flags}
            assert set(names) <= raised, raised


def run_step(run: Run, step: dict[str, Any]) -> None:
    if "ingest" in step:
        run.ingest(step["ingest"], step.get("rejected", []))
    elif "invoice" in step:
        run.invoice(step["invoice"])
    elif "statuses" in step:
        run.statuses(step["statuses"])
    elif "open" in step:
        run.open(step["open"])
    elif "decide" in step:
        run.decide(step["decide"])
    elif "flags" in step:
        run.flags(step["flags"])
    elif "clock" in step:
        run.clock(step["clock"])
    else:
        raise AssertionError(f"unknown step {step}")


def _vectors() -> list[Any]:
    found = []
    for path in sorted(VECTORS.glob("*.yaml")):
        vector = yaml.safe_load(path.read_text())
        judged = "judge:" in (CONTRACTS / vector["contract"]).read_text()
        marks = [pytest.mark.slow] if judged else []  # a judge is a process
        found.append(pytest.param(path, marks=marks, id=path.stem))
    return found


@pytest.mark.parametrize("path", _vectors())
def test_a_standard_unit_bills_its_vector(
    path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vector = yaml.safe_load(path.read_text())
    run = Run(tmp_path, vector, monkeypatch)
    for step in vector["steps"]:
        run_step(run, step)
    result = verify_ledger(run.store)
    assert [str(m) for m in result.mismatches] == []


def test_every_standard_unit_has_a_vector_and_applies() -> None:
    named = {yaml.safe_load(p.read_text())["contract"] for p in VECTORS.glob("*.yaml")}
    assert named == {p.name for p in CONTRACTS.glob("*.yaml")}
    assert len(named) >= 6
