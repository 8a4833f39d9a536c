"""Integrity: are outcome counts to be trusted? Rates, and flags with the numbers behind them.

Outcome pricing rewards claims; these figures watch for the bar being lowered (Goodhart):
more claims per task while each claim costs less, auditors disagreeing with claims,
customers disputing or reversing them, claims left pending.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from payoff.core.money import ZERO

SHARES = ("cost_per_claim_drop", "audit_disagreement", "high_disputes", "high_reversals")
"""Thresholds that are shares of a whole (outcome_rate_jump is a rise, and may exceed 1)."""


@dataclass(frozen=True)
class Thresholds:
    """When a flag is raised; every rate is a share (0.25 = 25%)."""

    outcome_rate_jump: Decimal = Decimal("0.5")  # claims per task up by half or more...
    cost_per_claim_drop: Decimal = Decimal("0.1")  # ...while the cost per claim falls by 10%+
    audit_disagreement: Decimal = Decimal("0.2")
    high_disputes: Decimal = Decimal("0.2")
    high_reversals: Decimal = Decimal("0.1")
    stale_after_days: int = 14
    min_claims: int = 10  # below this, rates are too noisy to flag
    min_audited: int = 3  # audit disagreement is judged from this many sampled claims

    def validate(self) -> list[str]:
        errors = []
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            finite = isinstance(value, int) or (isinstance(value, Decimal) and value.is_finite())
            if not finite or value < 0:
                errors.append(f"{name}: a finite, non-negative number, got {value!r}")
            elif name in SHARES and value > 1:
                errors.append(f"{name}: a share from 0 to 1, got {value}")
        return errors


@dataclass(frozen=True)
class OutcomeStats:
    """One customer's claims of one outcome type in a window, as of a time."""

    claims: int = 0
    verified: int = 0
    rejected: int = 0
    reversed: int = 0
    pending: int = 0
    deemed: int = 0
    audited: int = 0
    audit_decided: int = 0
    audit_rejected: int = 0
    stale: int = 0
    tasks: int = 0
    cost_nanousd: int = 0
    evidence_mismatches: int = 0
    """Openings of committed evidence that did not match the commitment."""

    @property
    def dispute_rate(self) -> Decimal | None:
        return _share(self.rejected, self.claims)

    @property
    def reversal_rate(self) -> Decimal | None:
        return _share(self.reversed, self.verified + self.reversed)

    @property
    def audit_disagreement(self) -> Decimal | None:
        """Of the sampled claims an auditor decided, the share rejected."""
        return _share(self.audit_rejected, self.audit_decided)

    @property
    def outcome_rate(self) -> Decimal | None:
        """Claims per task."""
        return _share(self.claims, self.tasks)

    @property
    def cost_per_claim_nanousd(self) -> Decimal | None:
        return _share(self.cost_nanousd, self.claims)

    @property
    def cost_per_verified_nanousd(self) -> Decimal | None:
        return _share(self.cost_nanousd, self.verified)


@dataclass(frozen=True)
class Flag:
    name: str
    why: str


def _share(part: int, whole: int) -> Decimal | None:
    if whole == 0:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


def change(now: Decimal | None, before: Decimal | None) -> Decimal | None:
    """Relative change, now against before (0.5 = up by half)."""
    if now is None or before is None or before == 0:
        return None
    return ((now - before) / before).quantize(Decimal("0.0001"), ROUND_HALF_EVEN)


def _pct(value: Decimal) -> str:
    return f"{(value * 100).quantize(Decimal('0.1'), ROUND_HALF_EVEN)}%"


Check = Callable[[OutcomeStats, OutcomeStats | None, Thresholds], bool]
Message = Callable[[OutcomeStats, OutcomeStats | None, Thresholds], str]


@dataclass(frozen=True)
class FlagRule:
    """One flag: when a window raises it, and the sentence that says why, with numbers."""

    name: str
    applies: Check
    message: Message


def _enough(now: OutcomeStats, limits: Thresholds) -> bool:
    return now.claims >= limits.min_claims


def _jump(now: OutcomeStats, baseline: OutcomeStats | None) -> tuple[Decimal, Decimal] | None:
    """Claims per task and cost per claim, relative changes against the baseline."""
    if baseline is None:
        return None
    rate_change = change(now.outcome_rate, baseline.outcome_rate)
    cost_change = change(now.cost_per_claim_nanousd, baseline.cost_per_claim_nanousd)
    if rate_change is None or cost_change is None:
        return None
    return rate_change, cost_change


def _rate_jumped(now: OutcomeStats, baseline: OutcomeStats | None, limits: Thresholds) -> bool:
    if not _enough(now, limits) or baseline is None or baseline.claims < limits.min_claims:
        return False
    jump = _jump(now, baseline)
    return (
        jump is not None
        and jump[0] >= limits.outcome_rate_jump
        and -jump[1] >= limits.cost_per_claim_drop
    )


def _rate_jump_why(now: OutcomeStats, baseline: OutcomeStats | None, _: Thresholds) -> str:
    jump = _jump(now, baseline)
    assert baseline is not None and jump is not None, "only said of a jump"
    rate_change, cost_change = jump
    return (
        f"claims per task {baseline.outcome_rate} -> {now.outcome_rate} "
        f"(+{_pct(rate_change)}) while cost per claim fell {_pct(-cost_change)}: "
        "the bar for claiming may have been lowered"
    )


FLAG_RULES = (
    FlagRule("outcome_rate_jump", _rate_jumped, _rate_jump_why),
    FlagRule(
        "audit_disagreement",
        lambda now, _, limits: (
            now.audit_decided >= limits.min_audited
            and (now.audit_disagreement or ZERO) >= limits.audit_disagreement
        ),
        lambda now, _, __: (
            f"auditors rejected {now.audit_rejected} of the {now.audit_decided} sampled "
            f"claims they decided ({_pct(now.audit_disagreement or ZERO)}; "
            f"{now.audited} sampled)"
        ),
    ),
    FlagRule(
        "high_disputes",
        lambda now, _, limits: (
            _enough(now, limits) and (now.dispute_rate or ZERO) >= limits.high_disputes
        ),
        lambda now, _, __: (
            f"{now.rejected} of {now.claims} claims rejected ({_pct(now.dispute_rate or ZERO)})"
        ),
    ),
    FlagRule(
        "high_reversals",
        lambda now, _, limits: (
            _enough(now, limits) and (now.reversal_rate or ZERO) >= limits.high_reversals
        ),
        lambda now, _, __: (
            f"{now.reversed} of {now.verified + now.reversed} verified claims reversed "
            f"({_pct(now.reversal_rate or ZERO)})"
        ),
    ),
    FlagRule(
        "evidence_mismatch",
        lambda now, _, __: now.evidence_mismatches > 0,
        lambda now, _, __: (
            f"{now.evidence_mismatches} evidence openings did not match the commitment their "
            "outcome carries"
        ),
    ),
    FlagRule(
        "stale_claims",
        lambda now, _, __: now.stale > 0,
        lambda now, _, limits: (
            f"{now.stale} claims pending for more than {limits.stale_after_days} days"
        ),
    ),
)
"""Every flag, in the order raised: a new flag is one more rule."""


def flags(now: OutcomeStats, baseline: OutcomeStats | None, limits: Thresholds) -> list[Flag]:
    """The flags a window raises, each saying why with its numbers."""
    return [
        Flag(rule.name, rule.message(now, baseline, limits))
        for rule in FLAG_RULES
        if rule.applies(now, baseline, limits)
    ]
