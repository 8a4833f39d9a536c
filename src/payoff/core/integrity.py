"""Integrity: are outcome counts to be trusted? Rates, and flags with the numbers behind them.

Outcome pricing rewards claims; these figures watch for the bar being lowered (Goodhart):
more claims per task while each claim costs less, auditors disagreeing with claims,
customers disputing or reversing them, claims left pending.
"""

from __future__ import annotations

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


def flags(now: OutcomeStats, baseline: OutcomeStats | None, limits: Thresholds) -> list[Flag]:
    """The flags a window raises, each saying why with its numbers."""
    raised = []
    enough = now.claims >= limits.min_claims
    if enough and baseline is not None and baseline.claims >= limits.min_claims:
        rate_change = change(now.outcome_rate, baseline.outcome_rate)
        cost_change = change(now.cost_per_claim_nanousd, baseline.cost_per_claim_nanousd)
        if (
            rate_change is not None
            and cost_change is not None
            and rate_change >= limits.outcome_rate_jump
            and -cost_change >= limits.cost_per_claim_drop
        ):
            raised.append(
                Flag(
                    "outcome_rate_jump",
                    (
                        f"claims per task {baseline.outcome_rate} -> {now.outcome_rate} "
                        f"(+{_pct(rate_change)}) while cost per claim fell {_pct(-cost_change)}: "
                        "the bar for claiming may have been lowered"
                    ),
                )
            )
    if (
        now.audit_decided >= limits.min_audited
        and (now.audit_disagreement or ZERO) >= limits.audit_disagreement
    ):
        raised.append(
            Flag(
                "audit_disagreement",
                (
                    f"auditors rejected {now.audit_rejected} of the {now.audit_decided} sampled "
                    f"claims they decided ({_pct(now.audit_disagreement or ZERO)}; "
                    f"{now.audited} sampled)"
                ),
            )
        )
    if enough and (now.dispute_rate or ZERO) >= limits.high_disputes:
        raised.append(
            Flag(
                "high_disputes",
                (
                    f"{now.rejected} of {now.claims} claims rejected "
                    f"({_pct(now.dispute_rate or ZERO)})"
                ),
            )
        )
    if enough and (now.reversal_rate or ZERO) >= limits.high_reversals:
        raised.append(
            Flag(
                "high_reversals",
                (
                    f"{now.reversed} of {now.verified + now.reversed} verified claims reversed "
                    f"({_pct(now.reversal_rate or ZERO)})"
                ),
            )
        )
    if now.stale:
        raised.append(
            Flag(
                "stale_claims",
                (f"{now.stale} claims pending for more than {limits.stale_after_days} days"),
            )
        )
    return raised
