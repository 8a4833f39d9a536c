"""Judges: the verifier an outcome contract names, run on a claim once it is due.

    claim due? ──▶ payload (the claim, its contract, the opened evidence) ──▶ judge
                      a local command: JSON on stdin, JSON on stdout, within the timeout
                      an HTTPS endpoint: JSON POSTed, JSON answered, within the timeout
              ◀── {"verdict": "accept" | "reject", "reason": "..."}
    ──▶ a decision by `judge`, checked against the lifecycle under the write lock

What a failure can do: nothing. A judge that exits non-zero, answers something other than a
verdict, answers more than MAX_ANSWER_BYTES (never read further), or takes longer than its
timeout, a deadline for the whole exchange (a command's process group is killed, an endpoint's
connection cut) leaves the claim pending, and the caller is told why (JudgeFailed); nothing
is written. The judge runs with no lock held: the lifecycle is checked again when its verdict
is written.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import selectors
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
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


def _too_slow(judge: Judge) -> JudgeFailed:
    return JudgeFailed(f"the judge did not answer within {_seconds(judge):g}s")


def _too_long() -> JudgeFailed:
    return JudgeFailed(f"the judge answered more than {MAX_ANSWER_BYTES:,} bytes")


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
    deadline = time.monotonic() + _seconds(judge)
    with process:
        try:
            out, err = _exchange(process, body, deadline)
            process.wait(max(0.0, _left(deadline)))
        except subprocess.TimeoutExpired:
            _kill(process)
            raise _too_slow(judge) from None
        except _AnswerTooLong:
            _kill(process)
            raise _too_long() from None
    if process.returncode != 0:
        said = err.decode("utf-8", "replace").strip()[-300:]
        raise JudgeFailed(f"the judge exited with status {process.returncode}: {said}")
    return out


class _AnswerTooLong(Exception):
    """The judge wrote more than MAX_ANSWER_BYTES on its standard output."""


MAX_STDERR_KEPT = 4096
"""The tail of a judge's standard error kept to say why it failed."""


def _left(deadline: float) -> float:
    return deadline - time.monotonic()


def _exchange(
    process: subprocess.Popen[bytes], body: bytes, deadline: float
) -> tuple[bytes, bytes]:
    """Write the request to the judge's stdin and read its stdout and stderr until both
    close, by the deadline (TimeoutExpired). Its stdout is read up to MAX_ANSWER_BYTES + 1
    bytes at most (then _AnswerTooLong), its stderr's tail only: a judge cannot make payoff
    hold more than that, nor wait past its timeout."""
    assert process.stdin and process.stdout and process.stderr
    out, err = bytearray(), bytearray()
    pending = memoryview(body)
    with selectors.DefaultSelector() as selector:
        if pending:
            os.set_blocking(process.stdin.fileno(), False)
            selector.register(process.stdin, selectors.EVENT_WRITE)
        else:
            process.stdin.close()
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            left = _left(deadline)
            if left <= 0:
                raise subprocess.TimeoutExpired(process.args, 0)
            for key, _ in selector.select(left):
                if key.fileobj is process.stdin:
                    pending = _write_some(selector, process.stdin, pending)
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if key.data is out and len(out) > MAX_ANSWER_BYTES:
                    raise _AnswerTooLong
                if key.data is err:
                    del err[:-MAX_STDERR_KEPT]
    return bytes(out), bytes(err)


def _write_some(selector: selectors.BaseSelector, stdin: Any, pending: memoryview) -> memoryview:
    """Write what the judge's stdin takes now; close it when all is written (or the judge
    closed it: a judge may answer without reading its request)."""
    try:
        pending = pending[os.write(stdin.fileno(), pending) :]
    except BrokenPipeError:
        pending = pending[:0]
    if not pending:
        selector.unregister(stdin)
        stdin.close()
    return pending


def _kill(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _by_endpoint(judge: Judge, body: bytes) -> bytes:
    """POST the request and read the answer, the whole exchange (connecting, sending,
    reading) within the judge's timeout: a worker thread does it, and at the deadline its
    connection is cut and the judge counted as too slow, however slowly it drips bytes."""
    exchange = _Exchange(judge, body)
    worker = threading.Thread(target=exchange.run, name="payoff-judge", daemon=True)
    worker.start()
    worker.join(_seconds(judge))
    if worker.is_alive():
        exchange.cut()
        raise _too_slow(judge)
    if exchange.failure is not None:
        raise exchange.failure
    return exchange.answer


class _Exchange:
    """One request to a judge's endpoint, run by a worker thread."""

    def __init__(self, judge: Judge, body: bytes) -> None:
        self.judge = judge
        self.body = body
        self.answer = b""
        self.failure: JudgeFailed | None = None
        self.connection: http.client.HTTPConnection | None = None

    def run(self) -> None:
        try:
            self.answer = self._post()
        except JudgeFailed as exc:
            self.failure = exc
        except TimeoutError:
            self.failure = _too_slow(self.judge)
        except (OSError, http.client.HTTPException) as exc:
            self.failure = JudgeFailed(f"the judge cannot be reached: {exc}")
        finally:
            if self.connection is not None:
                self.connection.close()

    def _post(self) -> bytes:
        assert self.judge.url is not None
        url = urllib.parse.urlsplit(self.judge.url)
        seconds = _seconds(self.judge)
        if url.scheme == "https":
            self.connection = http.client.HTTPSConnection(
                url.hostname or "", url.port, timeout=seconds,
                context=ssl.create_default_context(),
            )  # fmt: skip
        else:
            self.connection = http.client.HTTPConnection(url.hostname or "", url.port, seconds)
        path = url.path or "/"
        self.connection.request(
            "POST", f"{path}?{url.query}" if url.query else path, self.body,
            {"Content-Type": "application/json"},
        )  # fmt: skip
        with self.connection.getresponse() as response:
            if response.status != 200:
                raise JudgeFailed(f"the judge answered HTTP {response.status}")
            answer: bytes = response.read(MAX_ANSWER_BYTES + 1)
        if len(answer) > MAX_ANSWER_BYTES:
            raise _too_long()
        return answer

    def cut(self) -> None:
        """Shut the connection's socket down, from the caller's thread: the worker's
        blocked read or write returns at once."""
        sock = self.connection.sock if self.connection is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _verdict_of(answer: bytes) -> JudgeVerdict:
    if len(answer) > MAX_ANSWER_BYTES:
        raise _too_long()
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
