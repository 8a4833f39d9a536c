"""Judges: the verifier an outcome contract names, run on a claim once it is due.

    claim due? ──▶ payload (the claim, its contract, the opened evidence) ──▶ judge
                      a local command: JSON on stdin, JSON on stdout, within the timeout
                      an HTTPS endpoint: JSON POSTed, JSON answered, within the timeout
              ◀── {"verdict": "accept" | "reject", "reason": "..."}
    ──▶ a decision by `judge`, checked against the lifecycle under the write lock

What a failure can do: nothing. A judge that exits non-zero, answers something other than a
verdict, or takes longer than its timeout (its process group is killed) leaves the claim
pending, and the caller is told why (JudgeFailed); nothing is written. The judge runs with
no lock held: the lifecycle is checked again when its verdict is written.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from payoff.core.contract_rules import JUDGE, due_at
from payoff.core.contracts import Contract, Judge
from payoff.core.outcomes import LifecycleError, Verdict
from payoff.core.periods import US_PER_SECOND, iso_from_us
from payoff.service.clock import now_us
from payoff.service.outcomes import (
    OutcomeError,
    OutcomeNotFound,
    OutcomeState,
    check_verdict,
    list_states,
    states,
)
from payoff.store.outcomes import StoredOutcome
from payoff.store.protocol import VerifyingStore

MAX_ANSWER_BYTES = 64 * 1024
"""A judge's answer, at most: a verdict and a reason are a few hundred bytes."""
MAX_REASON_CHARS = 2000
"""A reason longer than this is cut (it is kept with the verdict, as an auditor's is)."""
JUDGE_ACTIONS = {"accept": "verify", "reject": "reject"}


class JudgeFailed(OutcomeError):
    """A judge failed, answered no verdict, or timed out: the claim stays pending."""


@dataclass(frozen=True)
class JudgeVerdict:
    verdict: str
    """accept or reject"""
    reason: str | None


def judge_payload(
    outcome: StoredOutcome, contract: Contract, evidence: Mapping[str, Any] | None
) -> dict[str, Any]:
    """What a judge receives: the claim, its contract, and the evidence when opened."""
    return {
        "outcome": {
            "id": outcome.id,
            "task": outcome.task,
            "customer": outcome.customer,
            "type": outcome.type,
            "value": None if outcome.value is None else str(outcome.value),
            "claimed_at": iso_from_us(outcome.claimed_at_us),
            "evidence_digest": outcome.evidence_digest,
        },
        "contract": contract.reference,
        "evidence": None if evidence is None else dict(evidence),
    }


def run_judge(judge: Judge, payload: Mapping[str, Any]) -> JudgeVerdict:
    """Ask a judge for its verdict; JudgeFailed says why there is none."""
    body = json.dumps(payload, sort_keys=True).encode()
    answer = _by_command(judge, body) if judge.command else _by_endpoint(judge, body)
    return _verdict_of(answer)


def _seconds(judge: Judge) -> float:
    return judge.timeout_us / US_PER_SECOND


def _by_command(judge: Judge, body: bytes) -> bytes:
    try:
        process = subprocess.Popen(
            judge.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own process group, killed whole on a timeout
        )
    except OSError as exc:
        raise JudgeFailed(f"the judge command {judge.command[0]!r} cannot run: {exc}") from None
    with process:
        try:
            out, err = process.communicate(body, timeout=_seconds(judge))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise JudgeFailed(f"the judge did not answer within {_seconds(judge):g}s") from None
    if process.returncode != 0:
        said = err.decode("utf-8", "replace").strip()[-300:]
        raise JudgeFailed(f"the judge exited with status {process.returncode}: {said}")
    return out


def _by_endpoint(judge: Judge, body: bytes) -> bytes:
    assert judge.url is not None
    request = urllib.request.Request(
        judge.url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=_seconds(judge)) as response:
            answer: bytes = response.read(MAX_ANSWER_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise JudgeFailed(f"the judge answered HTTP {exc.code}") from None
    except TimeoutError:
        raise JudgeFailed(f"the judge did not answer within {_seconds(judge):g}s") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise JudgeFailed(f"the judge did not answer within {_seconds(judge):g}s") from None
        raise JudgeFailed(f"the judge cannot be reached: {reason}") from None
    return answer


def _verdict_of(answer: bytes) -> JudgeVerdict:
    if len(answer) > MAX_ANSWER_BYTES:
        raise JudgeFailed(f"the judge answered more than {MAX_ANSWER_BYTES:,} bytes")
    try:
        found = json.loads(answer)
    except ValueError:
        raise JudgeFailed("the judge answered no JSON verdict") from None
    verdict = found.get("verdict") if isinstance(found, dict) else None
    if verdict not in JUDGE_ACTIONS:
        raise JudgeFailed(f'the judge answered no verdict ("accept" or "reject"): {found!r:.200}')
    reason = found.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise JudgeFailed("the judge's reason is not text")
    return JudgeVerdict(verdict, reason[:MAX_REASON_CHARS] if reason else None)


# -- judging a claim ------------------------------------------------------------------------


def judgeable(store: VerifyingStore, outcome_id: str) -> tuple[OutcomeState, Contract, Judge]:
    """The outcome's state, contract and judge, when a judge may decide it now; OutcomeError
    names why not (no judge, decided already, in the audit sample, not due yet)."""
    found = store.get_outcomes([outcome_id]).get(outcome_id)
    if found is None:
        raise OutcomeNotFound(f"no outcome {outcome_id!r}")
    now = now_us()
    (state,) = states(store, [found], now)
    contract = state.policy.contract
    if contract is None or contract.rule.judge is None:
        raise OutcomeError(f"outcome {outcome_id}: its plan names no contract with a judge")
    if state.lifecycle.status != "claimed":
        raise OutcomeError(
            f"outcome {outcome_id} is {state.lifecycle.status}: a judge decides pending claims"
        )
    if state.lifecycle.audited:
        raise OutcomeError(f"outcome {outcome_id} is in the audit sample: an auditor decides")
    due = _due(store, found, contract, now)
    if due > now:
        raise OutcomeError(
            f"outcome {outcome_id} is due for its judge from {iso_from_us(due)} "
            f"(its task quiet for the contract's inactivity)"
        )
    return state, contract, contract.rule.judge


def _due(store: VerifyingStore, outcome: StoredOutcome, contract: Contract, now: int) -> int:
    signals = store.signals_about([outcome.task], now).get(outcome.task, [])
    activity = [s.occurred_at_us for s in signals if s.outcome in (None, outcome.id)]
    return due_at(outcome.claimed_at_us, activity, contract.rule)


def judge_outcome(
    store: VerifyingStore, outcome_id: str, evidence: Mapping[str, Any] | None = None
) -> OutcomeState:
    """Run the contract's judge on a pending, due claim and keep its verdict.

    A contract that requires evidence is judged only with it (opened and checked by
    `service.evidence`). JudgeFailed when the judge gives no verdict: the claim stays
    pending, nothing is written.
    """
    state, contract, judge = judgeable(store, outcome_id)
    if contract.evidence and evidence is None:
        raise OutcomeError(
            f"outcome {outcome_id}: contract {contract.reference} judges its evidence; open it "
            f"with POST /v1/outcomes/{outcome_id}/evidence (or `payoff outcomes evidence`)"
        )
    try:
        answer = run_judge(judge, judge_payload(state.outcome, contract, evidence))
    except JudgeFailed as exc:
        raise JudgeFailed(f"outcome {outcome_id} stays pending: {exc}") from None
    return _keep(store, state.outcome, answer)


def _keep(store: VerifyingStore, outcome: StoredOutcome, answer: JudgeVerdict) -> OutcomeState:
    at_us = now_us()
    verdict = Verdict(JUDGE_ACTIONS[answer.verdict], JUDGE, at_us, answer.reason)
    try:
        store.add_decision(
            outcome.id, verdict.action, JUDGE, answer.reason, at_us, at_us,
            before_write=lambda: check_verdict(store, outcome, verdict),
        )  # fmt: skip
    except LifecycleError as exc:  # decided by someone else while the judge ran
        raise OutcomeError(f"outcome {outcome.id}: the judge's verdict is refused: {exc}") from None
    (state,) = states(store, [outcome], now_us())
    return state


@dataclass
class JudgeRun:
    """What a run over the pending claims did, outcome by outcome."""

    judged: list[OutcomeState]
    failed: dict[str, str]
    """Outcome id -> why its judge gave no verdict (it stays pending)."""
    waiting: dict[str, str]
    """Outcome id -> why it was not judged yet (not due, its evidence not opened)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "judged": [
                {
                    "id": s.outcome.id,
                    "status": s.lifecycle.status,
                    "reason": s.lifecycle.last_step.reason,
                }
                for s in self.judged
            ],
            "failed": self.failed,
            "waiting": self.waiting,
        }


MAX_JUDGED_AT_ONCE = 1_000
"""Claims one run judges at most; the next run takes the rest."""


def judge_pending(store: VerifyingStore, customer: str | None = None) -> JudgeRun:
    """Run the judge on every pending claim whose contract names one and that is due (up to
    MAX_JUDGED_AT_ONCE); claims whose contract judges evidence wait for it to be opened."""
    run = JudgeRun([], {}, {})
    pending = [
        s
        for s in list_states(store, customer, "claimed")
        if s.policy.contract is not None and s.policy.contract.rule.judge is not None
    ]
    for state in pending[:MAX_JUDGED_AT_ONCE]:
        outcome_id = state.outcome.id
        try:
            _, contract, _ = judgeable(store, outcome_id)
            if contract.evidence:
                run.waiting[outcome_id] = "waits for its evidence to be opened"
                continue
            run.judged.append(judge_outcome(store, outcome_id))
        except JudgeFailed as exc:
            run.failed[outcome_id] = str(exc)
        except OutcomeError as exc:
            run.waiting[outcome_id] = str(exc)
    return run
