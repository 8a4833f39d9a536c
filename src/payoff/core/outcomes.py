"""Outcome lifecycles: claimed -> verified | rejected, verified -> reversed, as a table.

An outcome's status is derived, as of a time, from its claim, the verdicts given on it
(a customer's attestations, an auditor's or operator's decisions) and the verification
policy of the charge that prices it:

- `none`: a claim is verified when made (by `rule`);
- `customer`: verified when the customer accepts, rejected when it rejects, and verified
  (`deemed`) once `accept_after_days` pass with no verdict;
- `audit`: a deterministic sample (reproducible from the outcome id) waits for an auditor's
  verdict; the others are verified when made (by `rule`).

A verified outcome may be reversed within `warranty_days` of its verification; later
reversals are refused. Nothing is deleted: every step is kept with who, when and why.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from payoff.core.errors import Refused
from payoff.core.periods import US_PER_DAY
from payoff.core.statuses import OutcomeStatus

if TYPE_CHECKING:
    from payoff.core.contracts import Contract

MAX_WINDOW_DAYS = 365
"""Acceptance windows and warranties are at most a year: billing looks back that far."""
VERIFICATION_LOOKBACK_DAYS = MAX_WINDOW_DAYS + 1
"""How far before a period an invoice looks for claims verified in it (a day to spare)."""
VERIFICATION_MODES = ("none", "customer", "audit")

# (status, action) -> new status. Anything else is out of lifecycle order.
TRANSITIONS: dict[tuple[str, str], OutcomeStatus] = {
    ("claimed", "verify"): "verified",
    ("claimed", "reject"): "rejected",
    ("verified", "reverse"): "reversed",
}
VERDICT_ACTIONS = {"accept": "verify", "reject": "reject", "reverse": "reverse"}
NOT_STATUSES = ("ignored", "held")
"""Steps that change no status: a verdict out of order, a follow-up holding a claim."""


class LifecycleError(Refused, ValueError):
    """A verdict the outcome's status does not allow, or one given too late."""


@dataclass(frozen=True)
class Policy:
    """How an outcome charge verifies its claims: its own settings, or the rule of the
    outcome contract it names (`contract`, resolved; `core.contract_rules` applies it)."""

    verification: str = "none"
    accept_after_days: int | None = None
    warranty_days: int | None = None
    audit_rate: Decimal = Decimal(0)
    contract: Contract | None = None

    @property
    def has_deadline(self) -> bool:
        """Whether a claim nobody decides on is still verified in time (deemed, or by rule)."""
        if self.contract is not None:
            return self.contract.rule.decides_alone
        return self.verification != "customer" or self.accept_after_days is not None

    @property
    def mode(self) -> str:
        """The verification as listed: none, customer, audit, or contract."""
        return "contract" if self.contract is not None else self.verification

    def validate(self) -> list[str]:
        errors = []
        if self.verification not in VERIFICATION_MODES:
            errors.append(f"verification: one of {', '.join(VERIFICATION_MODES)}")
        for name in ("accept_after_days", "warranty_days"):
            value = getattr(self, name)
            if value is not None and value < 0:
                errors.append(f"{name}: must not be negative, got {value}")
            elif value is not None and value > MAX_WINDOW_DAYS:
                errors.append(f"{name}: at most {MAX_WINDOW_DAYS} days, got {value}")
        if not 0 <= self.audit_rate <= 1:
            errors.append(f"audit_rate: a share from 0 to 1, got {self.audit_rate}")
        if self.verification == "audit" and self.audit_rate == 0:
            errors.append("audit_rate: an audit policy needs a positive rate")
        return errors


@dataclass(frozen=True)
class Verdict:
    """A decision on an outcome: by the customer (an attestation) or an auditor/operator."""

    action: str  # verify | reject | reverse
    by: str  # customer | auditor
    at_us: int
    reason: str | None = None


@dataclass(frozen=True)
class Step:
    """One transition an outcome went through."""

    status: str
    by: str
    at_us: int
    reason: str | None = None


@dataclass(frozen=True)
class Lifecycle:
    status: str
    steps: tuple[Step, ...]
    audited: bool

    @property
    def verified_at_us(self) -> int | None:
        return next((s.at_us for s in self.steps if s.status == "verified"), None)

    @property
    def last_step(self) -> Step:
        """The step that set the status (ignored verdicts and holds aside)."""
        return next(s for s in reversed(self.steps) if s.status not in NOT_STATUSES)

    @property
    def verified_by(self) -> str | None:
        return next((s.by for s in self.steps if s.status == "verified"), None)


def audit_sampled(outcome_id: str, rate: Decimal) -> bool:
    """Whether an outcome is in the audit sample: the same answer for the same id, always.

    The id's sha256, read as a number in [0, 1), falls below the rate.
    """
    if rate <= 0:
        return False
    point = int.from_bytes(hashlib.sha256(outcome_id.encode()).digest()[:8], "big")
    return Decimal(point) / Decimal(2**64) < rate


def transition(status: str, action: str) -> str:
    try:
        return TRANSITIONS[(status, action)]
    except KeyError:
        raise LifecycleError(f"cannot {action} an outcome that is {status}") from None


def lifecycle(
    outcome_id: str,
    claimed_at_us: int,
    verdicts: Sequence[Verdict],
    policy: Policy,
    as_of_us: int,
    *,
    strict: bool = True,
) -> Lifecycle:
    """The outcome's status as of a time, and the steps that led there.

    Verdicts are applied in time order; those given after `as_of_us` are ignored. A verdict
    out of lifecycle order, or dated before the claim, raises LifecycleError when `strict`
    (checking a new verdict); otherwise (replaying stored ones, which a later change of plan
    may have put out of order) it is kept as an `ignored` step and changes nothing.
    """
    audited = policy.verification == "audit" and audit_sampled(outcome_id, policy.audit_rate)
    steps = [Step("claimed", "rule", claimed_at_us)]
    status = "claimed"
    if policy.verification == "none" or (policy.verification == "audit" and not audited):
        status = "verified"
        steps.append(Step("verified", "rule", claimed_at_us))
    deadline = None
    if policy.verification == "customer" and policy.accept_after_days is not None:
        deadline = claimed_at_us + policy.accept_after_days * US_PER_DAY
    for verdict in sorted(verdicts, key=lambda v: v.at_us):
        if verdict.at_us > as_of_us:
            break
        if deadline is not None and verdict.at_us > deadline:
            status = _deemed(status, deadline, steps)
        try:
            if verdict.at_us < claimed_at_us:
                raise LifecycleError("a verdict cannot be dated before the claim")
            status = apply_verdict(status, verdict, steps, policy)
        except LifecycleError as exc:
            if strict:
                raise
            steps.append(Step("ignored", verdict.by, verdict.at_us, str(exc)))
            continue
        steps.append(Step(status, verdict.by, verdict.at_us, verdict.reason))
    if deadline is not None and deadline <= as_of_us:
        status = _deemed(status, deadline, steps)
    return Lifecycle(status, tuple(steps), audited)


def _deemed(status: str, deadline_us: int, steps: list[Step]) -> str:
    """A claim the customer left without a verdict until its deadline is verified then."""
    if status != "claimed":
        return status
    steps.append(Step("verified", "deemed", deadline_us, "no verdict in time"))
    return "verified"


def apply_verdict(status: str, verdict: Verdict, steps: Sequence[Step], policy: Policy) -> str:
    """The status after a verdict; LifecycleError when it is out of order or too late.

    Accepting an outcome already verified (by rule, or deemed) confirms it and changes
    nothing; every other verdict must be a transition of the table.
    """
    if status == "verified" and verdict.action == "verify":
        return status
    new = transition(status, verdict.action)
    if verdict.action == "reverse":
        verified_at = next(s.at_us for s in steps if s.status == "verified")
        if policy.warranty_days is None:
            raise LifecycleError("this outcome's charge has no warranty: it cannot be reversed")
        if verdict.at_us > verified_at + policy.warranty_days * US_PER_DAY:
            raise LifecycleError(
                f"the {policy.warranty_days}-day warranty of this outcome has ended"
            )
    if status == "claimed" and verdict.by == "customer" and policy.verification == "audit":
        raise LifecycleError("this outcome is verified by audit, not by the customer")
    return new


def verified_at(
    outcome_id: str,
    claimed_at_us: int,
    verdicts: Sequence[Verdict],
    policy: Policy,
    as_of_us: int,
) -> int | None:
    """When the outcome was verified, if it is verified (and not reversed) as of the time.

    Most outcomes have no verdict and a policy that decides alone (none, or a customer's
    deadline): their verification time follows from the claim without building a lifecycle.
    """
    if not verdicts and policy.verification == "none":
        return claimed_at_us
    if not verdicts and policy.verification == "customer" and policy.accept_after_days is not None:
        deadline = claimed_at_us + policy.accept_after_days * US_PER_DAY
        return deadline if deadline <= as_of_us else None
    life = lifecycle(outcome_id, claimed_at_us, verdicts, policy, as_of_us, strict=False)
    return life.verified_at_us if life.status == "verified" else None
