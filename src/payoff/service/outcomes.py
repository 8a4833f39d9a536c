"""Outcome use cases: statuses as of a time, verdicts (attested or decided), what is billed.

An outcome's verification policy comes from the outcome charge of the plan its customer was
subscribed to when it was claimed (`Plan.policy_for`); without one, a claim counts when made.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from payoff.core.contract_rules import Signal, outcome_lifecycle, outcome_verified_at
from payoff.core.errors import NotFound, Refused
from payoff.core.outcomes import (
    VERDICT_ACTIONS,
    VERIFICATION_LOOKBACK_DAYS,
    Lifecycle,
    LifecycleError,
    Policy,
    Verdict,
)
from payoff.core.periods import US_PER_DAY, Period, iso_from_us
from payoff.plan_files import plan_from_body
from payoff.service.clock import now_us
from payoff.service.contracts import ContractBook
from payoff.store.outcomes import MAX_OUTCOMES_LISTED as MAX_OUTCOMES_LISTED  # for the shells
from payoff.store.outcomes import StoredOutcome, StoredVerdict
from payoff.store.protocol import ATTESTATIONS, OUTCOMES, REJECTED, Row, VerifyingStore, WriteStatus
from payoff.store.signals import StoredSignal, bearing_on

DECISION_ACTIONS = ("verify", "reject", "reverse")
DECIDERS = ("auditor",)
MAX_VERIFICATION_DAYS = VERIFICATION_LOOKBACK_DAYS
"""How far back an invoice run looks for claims that become verified in its period."""


class OutcomeError(Refused):
    """An outcome request that cannot be carried out; the message says why."""


class OutcomeNotFound(NotFound, OutcomeError):
    """No outcome with that id."""


class Policies:
    """Each outcome's verification policy, resolved from subscriptions and plans (cached)."""

    def __init__(self, store: VerifyingStore) -> None:
        self.store = store
        self._subscriptions: dict[str, list[Any]] = {}
        self._plans: dict[tuple[str, int], Any] = {}
        self._single: dict[tuple[str, str], tuple[int, Policy]] = {}
        self._loaded = False
        self._contracts = ContractBook(store)

    def for_outcome(self, outcome: StoredOutcome) -> Policy:
        key = (outcome.customer, outcome.type)
        cached = self._single.get(key)
        if cached is not None and outcome.claimed_at_us >= cached[0]:
            return cached[1]
        policy = self._resolve(outcome)
        subs = self._subscriptions[outcome.customer]
        only = subs[0] if len(subs) == 1 else None
        if (
            only is not None
            and only.ends_at_us is None
            and only.starts_at_us <= outcome.claimed_at_us
        ):
            # One open subscription covering the claim: any claim of this type from its
            # start has the same policy (earlier claims are resolved each time).
            self._single[key] = (only.starts_at_us, policy)
        return policy

    def _resolve(self, outcome: StoredOutcome) -> Policy:
        if not self._loaded:
            # Every subscription in one query: a run resolves thousands of outcomes.
            for sub in self.store.subscriptions(0, 2**62):
                self._subscriptions.setdefault(sub.customer, []).append(sub)
            self._loaded = True
        self._subscriptions.setdefault(outcome.customer, [])
        active = [
            s
            for s in self._subscriptions[outcome.customer]
            if s.starts_at_us <= outcome.claimed_at_us
            and (s.ends_at_us is None or outcome.claimed_at_us < s.ends_at_us)
        ]
        if not active:
            return Policy()
        sub = active[-1]
        key = (sub.plan_id, sub.plan_version)
        if key not in self._plans:
            stored = self.store.get_plan(sub.plan_id, sub.plan_version)
            self._plans[key] = plan_from_body(stored.body, self._contracts) if stored else None
        plan = self._plans[key]
        return plan.policy_for(outcome.type) if plan is not None else Policy()


def _verdicts(stored: Sequence[StoredVerdict]) -> list[Verdict]:
    return [Verdict(v.action, v.by, v.at_us, v.reason) for v in stored]


def _iso_or_none(moment_us: int | None) -> str | None:
    return None if moment_us is None else iso_from_us(moment_us)


@dataclass(frozen=True)
class OutcomeState:
    outcome: StoredOutcome
    policy: Policy
    lifecycle: Lifecycle

    def as_json(self) -> dict[str, Any]:
        """One outcome, the same for the CLI and the HTTP API: times in RFC 3339."""
        o, life = self.outcome, self.lifecycle
        return {
            "id": o.id, "customer": o.customer, "task": o.task, "type": o.type,
            "value": None if o.value is None else str(o.value), "status": life.status,
            "claimed_at": iso_from_us(o.claimed_at_us),
            "verified_at": _iso_or_none(life.verified_at_us),
            "verified_by": life.verified_by, "audited": life.audited,
            "verification": self.policy.mode,
            "contract": None if self.policy.contract is None else self.policy.contract.reference,
            "steps": [{"status": s.status, "by": s.by, "at": iso_from_us(s.at_us),
                       "reason": s.reason} for s in life.steps],
        }  # fmt: skip


def states(
    store: VerifyingStore,
    outcomes: Iterable[StoredOutcome],
    as_of_us: int,
    policies: Policies | None = None,
) -> list[OutcomeState]:
    """Each outcome's lifecycle as of a time, from its claim, verdicts, signals and policy."""
    outcomes = list(outcomes)
    policies = policies or Policies(store)
    verdicts = store.verdicts_for([o.id for o in outcomes], as_of_us)
    chosen = [(outcome, policies.for_outcome(outcome)) for outcome in outcomes]
    signals = _signals_of(store, chosen, as_of_us)
    result = []
    for outcome, policy in chosen:
        life = outcome_lifecycle(
            outcome.id,
            outcome.claimed_at_us,
            _verdicts(verdicts.get(outcome.id, [])),
            policy,
            as_of_us,
            _bearing(signals, outcome),
            strict=False,
        )
        result.append(OutcomeState(outcome, policy, life))
    return result


def _signals_of(
    store: VerifyingStore, chosen: Sequence[tuple[StoredOutcome, Policy]], as_of_us: int | None
) -> dict[str, list[StoredSignal]]:
    """The signals about the tasks of the outcomes a contract verifies (only a contract's
    rule reads signals), by task."""
    tasks = {outcome.task for outcome, policy in chosen if policy.contract is not None}
    return store.signals_about(tasks, as_of_us) if tasks else {}


def _bearing(found: dict[str, list[StoredSignal]], outcome: StoredOutcome) -> list[Signal]:
    """The signals bearing on an outcome, in time order, as the core reads them."""
    return [
        Signal(signal.name, signal.occurred_at_us)
        for signal in bearing_on(found.get(outcome.task, ()), outcome.id)
    ]


class Verified(NamedTuple):
    """An outcome verified in a period: what an outcome charge bills."""

    outcome: StoredOutcome
    verified_at_us: int


def verified_in(
    store: VerifyingStore,
    period: Period,
    as_of_us: int,
    customer: str | None,
) -> list[Verified]:
    """Outcomes verified in the period (and not rejected or reversed as of the time), in
    the order they were verified. `core.derivation` re-derives the same from ledger rows."""
    claimed_from = period.start_us - MAX_VERIFICATION_DAYS * US_PER_DAY
    candidates = store.outcomes_in(claimed_from, period.start_us, period.end_us, as_of_us, customer)
    policies = Policies(store)
    verdicts = store.verdicts_in(claimed_from, period.start_us, period.end_us, as_of_us, customer)
    chosen = [(outcome, policies.for_outcome(outcome)) for outcome in candidates]
    signals = _signals_of(store, chosen, as_of_us)
    found = []
    for outcome, policy in chosen:
        at = outcome_verified_at(
            outcome.id,
            outcome.claimed_at_us,
            _verdicts(verdicts.get(outcome.id) or []),
            policy,
            as_of_us,
            _bearing(signals, outcome),
        )
        if at is not None and period.start_us <= at < period.end_us:
            found.append(Verified(outcome, at))
    found.sort(key=lambda v: (v.verified_at_us, v.outcome.id))
    return found


def check_verdict(
    store: VerifyingStore,
    outcome: StoredOutcome,
    new: Verdict,
    pending: Sequence[Verdict] = (),
    policies: Policies | None = None,
) -> None:
    """Raise LifecycleError unless the verdict follows the outcome's lifecycle.

    Stored verdicts are replayed as they stand (one a later plan change put out of order is
    ignored); `pending` ones, earlier in the same batch, and the new one must all apply.
    """
    policy = (policies or Policies(store)).for_outcome(outcome)
    stored = _verdicts(store.verdicts_for([outcome.id]).get(outcome.id, []))
    latest = max(v.at_us for v in [*stored, *pending, new])
    signals = _bearing(_signals_of(store, [(outcome, policy)], None), outcome)
    before = outcome_lifecycle(
        outcome.id,
        outcome.claimed_at_us,
        [*stored, *pending],
        policy,
        latest,
        signals,
        strict=False,
    )
    after = outcome_lifecycle(
        outcome.id, outcome.claimed_at_us, [*stored, *pending, new], policy, latest, signals,
        strict=False,
    )  # fmt: skip
    refused = [s for s in after.steps if s.status == "ignored"]
    if len(refused) > len([s for s in before.steps if s.status == "ignored"]):
        newly = [s for s in refused if s not in before.steps]
        raise LifecycleError(newly[0].reason if newly else "out of lifecycle order")


def _claims_in_batch(rows: Sequence[Row]) -> dict[str, StoredOutcome]:
    """Outcome rows of the batch being written, which its attestations may name."""
    at = {name: OUTCOMES.column_index(name) for name in OUTCOMES.columns}
    claims = {}
    for row in rows:
        value = row[at["value"]]
        claims[str(row[at["id"]])] = StoredOutcome(
            id=str(row[at["id"]]),
            task=str(row[at["task"]]),
            customer=str(row[at["customer"]]),
            type=str(row[at["type"]]),
            value=None if value is None else Decimal(str(value)),
            evidence_digest=row[at["evidence_digest"]],
            claimed_at_us=row[at["occurred_at_us"]],
            received_at_us=0,  # stamped when written
        )
    return claims


def check_attestations(
    store: VerifyingStore, rows: list[Row], outcome_rows: Sequence[Row] = ()
) -> list[WriteStatus | None]:
    """Refusals for attestations out of lifecycle order (index-aligned with rows).

    `outcome_rows` are the outcomes written in the same batch. Attestations already stored
    are left to the store (duplicates or conflicts), as are unknown outcomes.
    """
    at = {
        name: ATTESTATIONS.column_index(name)
        for name in ("id", "outcome", "verdict", "occurred_at_us")
    }
    outcomes = _claims_in_batch(outcome_rows)
    outcomes.update(store.get_outcomes(str(row[at["outcome"]]) for row in rows))
    known = store.stored_attestations(str(row[at["id"]]) for row in rows)
    policies = Policies(store)
    pending: dict[str, list[Verdict]] = defaultdict(list)
    statuses: list[WriteStatus | None] = [None] * len(rows)
    # Each outcome's verdicts of the batch are checked in time order, not file order.
    order = sorted(range(len(rows)), key=lambda i: int(rows[i][at["occurred_at_us"]]))
    for index in order:
        row = rows[index]
        outcome = outcomes.get(str(row[at["outcome"]]))
        if outcome is None or row[at["id"]] in known:
            continue
        action = VERDICT_ACTIONS[str(row[at["verdict"]])]
        verdict = Verdict(action, "customer", int(row[at["occurred_at_us"]]))
        try:
            check_verdict(store, outcome, verdict, pending[outcome.id], policies)
        except LifecycleError as exc:
            statuses[index] = WriteStatus(REJECTED, str(exc), "verdict")
            continue
        pending[outcome.id].append(verdict)
    return statuses


def decide(
    store: VerifyingStore, outcome_id: str, action: str, by: str, reason: str | None
) -> OutcomeState:
    """An auditor's or operator's verdict, checked against the lifecycle and kept forever."""
    if action not in DECISION_ACTIONS:
        raise OutcomeError(f"action is one of {', '.join(DECISION_ACTIONS)}")
    if by not in DECIDERS:
        raise OutcomeError(f"the decider (by) is one of {', '.join(DECIDERS)}, got {by!r}")
    outcome = store.get_outcomes([outcome_id]).get(outcome_id)
    if outcome is None:
        raise OutcomeNotFound(f"no outcome {outcome_id!r}")
    at_us = now_us()
    try:
        store.add_decision(
            outcome_id, action, by, reason, at_us, at_us,
            before_write=lambda: check_verdict(store, outcome, Verdict(action, by, at_us, reason)),
        )  # fmt: skip
    except LifecycleError as exc:
        raise OutcomeError(f"outcome {outcome_id}: {exc}") from None
    (state,) = states(store, [outcome], now_us())
    contract = state.policy.contract
    if contract is not None and not contract.retain_evidence and not under_review(state):
        store.forget_evidence(outcome_id)  # held for the auditor, who has decided
    return state


def under_review(state: OutcomeState) -> bool:
    """Whether an auditor is to review the claim: in the audit sample, not decided yet."""
    return state.lifecycle.audited and state.lifecycle.status == "claimed"


SCAN_CLAIMS = 1_000
"""Claims read at a time while looking for outcomes with a status."""
MAX_CLAIMS_SCANNED = 20_000
"""Claims read for one page filtered by status; a page cut short by it still has a next one."""


class StatesPage(NamedTuple):
    """A page of outcome states, and the offset of the next page (None: there is none)."""

    states: list[OutcomeState]
    next_offset: int | None


def states_page(
    store: VerifyingStore, customer: str | None, status: str | None, offset: int, count: int
) -> StatesPage:
    """Up to `count` outcome states, in claim order, from the `offset`-th claim; with
    `status` only those whose lifecycle has that status now.

    Offsets count claims read, not states kept: a status is known only once a claim's
    lifecycle is built, so a filtered page reads claims in chunks until it is full, and no
    claim is skipped or given twice from page to page. A filtered page may hold fewer than
    `count` states (MAX_CLAIMS_SCANNED read) and still have a next one.
    """
    as_of_us = now_us()
    if status is None:  # one claim more than the page holds tells whether there is a next
        claims = store.list_outcome_claims(customer, limit=count + 1, offset=offset)
        found = states(store, claims, as_of_us)
        return StatesPage(found[:count], offset + count if len(found) > count else None)
    kept: list[OutcomeState] = []
    scanned = 0
    while len(kept) < count and scanned < MAX_CLAIMS_SCANNED:
        chunk_start = offset
        claims = store.list_outcome_claims(customer, limit=SCAN_CLAIMS, offset=offset)
        for state in states(store, claims, as_of_us):
            offset += 1
            if state.lifecycle.status == status:
                kept.append(state)
                if len(kept) == count:
                    break
        scanned += len(claims)
        if len(claims) < SCAN_CLAIMS and offset == chunk_start + len(claims):
            return StatesPage(kept, None)  # read to the end
    return StatesPage(kept, offset)


def list_states(
    store: VerifyingStore, customer: str | None = None, status: str | None = None
) -> list[OutcomeState]:
    """Outcome states in claim order, at most MAX_OUTCOMES_LISTED claims read (for the CLI)."""
    found = states(store, store.list_outcome_claims(customer), now_us())
    return [s for s in found if status is None or s.lifecycle.status == status]
