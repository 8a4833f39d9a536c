"""The integrity report: per customer and outcome type, can the outcome count be trusted?

For a period: claims, verified, rejected, reversed, pending, deemed; dispute and reversal
rates; the audit sample and how often auditors disagreed; claims per task and cost per
verified outcome, with their change against a baseline; and flags (payoff.core.integrity).
The baseline is the previous period; when it has too few claims, the period's first half,
compared with its second half (drift within the period).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any

import msgspec

from payoff.core.integrity import Flag, OutcomeStats, Thresholds, change, flags
from payoff.core.money import format_nanousd
from payoff.core.periods import US_PER_DAY, Period
from payoff.service.clock import now_us
from payoff.service.outcomes import OutcomeError, OutcomeState, states
from payoff.store.protocol import IntegrityStore


class ThresholdsFile(msgspec.Struct, forbid_unknown_fields=True):
    thresholds: dict[str, Any] = {}


def load_thresholds(path: str | Path | None) -> Thresholds:
    """Thresholds from a YAML file (`thresholds: {high_disputes: "0.3", ...}`), or defaults."""
    if path is None:
        return Thresholds()
    try:
        given = msgspec.yaml.decode(Path(path).read_bytes(), type=ThresholdsFile).thresholds
        unknown = sorted(set(given) - set(Thresholds.__dataclass_fields__))
        if unknown:
            known = ", ".join(Thresholds.__dataclass_fields__)
            raise OutcomeError(f"thresholds {path}: unknown {', '.join(unknown)} (known: {known})")
        limits = msgspec.convert(given, type=Thresholds, strict=False)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise OutcomeError(f"thresholds {path}: {exc}") from None
    errors = limits.validate()
    if errors:
        raise OutcomeError(f"thresholds {path}: " + "; ".join(errors))
    return limits


def _usd(amount_nanousd: Decimal | None) -> str | None:
    """Exact USD to the nano-dollar (half-even), as the economics report prints it."""
    if amount_nanousd is None:
        return None
    return format_nanousd(int(amount_nanousd.to_integral_value(ROUND_HALF_EVEN)))


@dataclass(frozen=True)
class Row:
    customer: str
    outcome_type: str
    stats: OutcomeStats
    compared: OutcomeStats
    """The window set against the baseline: the period, or its second half."""
    baseline: OutcomeStats | None
    baseline_name: str
    flags: list[Flag]

    def as_json(self) -> dict[str, Any]:
        s, c, b = self.stats, self.compared, self.baseline

        def text(value: Any) -> str | None:
            return None if value is None else str(value)

        return {
            "customer": self.customer, "outcome_type": self.outcome_type,
            "claims": s.claims, "verified": s.verified, "rejected": s.rejected,
            "reversed": s.reversed, "pending": s.pending, "deemed": s.deemed,
            "dispute_rate": text(s.dispute_rate), "reversal_rate": text(s.reversal_rate),
            "audit_sample": s.audited, "audit_decided": s.audit_decided,
            "audit_rejected": s.audit_rejected,
            "audit_disagreement": text(s.audit_disagreement),
            "tasks": s.tasks, "outcome_rate": text(s.outcome_rate),
            "outcome_rate_change": text(change(c.outcome_rate, b.outcome_rate if b else None)),
            "cost_per_verified_outcome_usd": _usd(s.cost_per_verified_nanousd),
            "cost_per_verified_outcome_change": text(change(
                c.cost_per_verified_nanousd, b.cost_per_verified_nanousd if b else None)),
            "evidence_mismatches": s.evidence_mismatches,
            "baseline": self.baseline_name,
            "flags": [{"name": f.name, "why": f.why} for f in self.flags],
        }  # fmt: skip


def _stats(
    found: Sequence[OutcomeState],
    activity: dict[str | None, tuple[int, int]],
    task_types: dict[str, str | None],
    now: int,
    limits: Thresholds,
    mismatched: dict[str, int],
) -> OutcomeStats:
    counts: dict[str, int] = defaultdict(int)
    for state in found:
        life = state.lifecycle
        counts["mismatched"] += mismatched.get(state.outcome.id, 0)
        counts[life.status] += 1
        counts["deemed"] += life.verified_by == "deemed"
        counts["audited"] += life.audited
        counts["audit_decided"] += life.audited and life.status != "claimed"
        counts["audit_rejected"] += life.audited and life.status == "rejected"
        held = any(step.status == "held" for step in life.steps)  # a follow-up holds it
        waiting = life.status == "claimed" and (
            life.audited or held or not state.policy.has_deadline
        )
        counts["stale"] += waiting and now - state.outcome.claimed_at_us > (
            limits.stale_after_days * US_PER_DAY
        )
    kinds = {task_types.get(state.outcome.task) for state in found}
    return OutcomeStats(
        claims=len(found), verified=counts["verified"], rejected=counts["rejected"],
        reversed=counts["reversed"], pending=counts["claimed"], deemed=counts["deemed"],
        audited=counts["audited"], audit_decided=counts["audit_decided"],
        audit_rejected=counts["audit_rejected"],
        stale=counts["stale"], evidence_mismatches=counts["mismatched"],
        tasks=sum(activity.get(kind, (0, 0))[0] for kind in kinds),
        cost_nanousd=sum(activity.get(kind, (0, 0))[1] for kind in kinds),
    )  # fmt: skip


def _window(
    store: IntegrityStore,
    start_us: int,
    end_us: int,
    now: int,
    customer: str | None,
    limits: Thresholds,
) -> dict[tuple[str, str], OutcomeStats]:
    # Claims dated after now are not counted: the report is as of now.
    claims = [
        o
        for o in store.outcomes_in(start_us, start_us, end_us, now, customer)
        if start_us <= o.claimed_at_us <= now
    ]
    found = states(store, claims, now)
    task_types = store.task_types_of(o.task for o in claims)
    activity: dict[str, dict[str | None, tuple[int, int]]] = defaultdict(dict)
    for row in store.task_activity(start_us, end_us, customer):
        activity[row.customer][row.task_type] = (row.tasks, row.cost_nanousd)
    groups: dict[tuple[str, str], list[OutcomeState]] = defaultdict(list)
    for state in found:
        groups[(state.outcome.customer, state.outcome.type)].append(state)
    mismatched = {
        outcome: sum(not opening.matched for opening in openings)
        for outcome, openings in store.evidence_openings(o.id for o in claims).items()
    }
    return {
        key: _stats(group, activity[key[0]], task_types, now, limits, mismatched)
        for key, group in groups.items()
    }


def report(
    store: IntegrityStore,
    period_label: str,
    customer: str | None = None,
    limits: Thresholds | None = None,
    as_of_us: int | None = None,
) -> list[Row]:
    """The integrity report of a period, as of a time (now by default)."""
    limits = limits or Thresholds()
    try:
        period = Period.month(period_label)
    except ValueError as exc:
        raise OutcomeError(str(exc)) from None
    now = now_us() if as_of_us is None else as_of_us
    current = _window(store, period.start_us, period.end_us, now, customer, limits)
    previous_period = period.previous()
    previous = _window(
        store, previous_period.start_us, previous_period.end_us, now, customer, limits
    )
    middle = period.start_us + (period.days // 2) * US_PER_DAY
    first = _window(store, period.start_us, middle, now, customer, limits)
    second = _window(store, middle, period.end_us, now, customer, limits)
    rows = []
    for key, stats in sorted(current.items()):
        baseline, name, compared = previous.get(key), previous_period.label, stats
        if baseline is None or baseline.claims < limits.min_claims:
            # Drift within the period: its second half against its first.
            baseline, name = first.get(key), f"first half of {period.label}"
            compared = second.get(key, OutcomeStats())
        raised = flags(compared, baseline, limits)
        # Disputes, reversals, audits and stale claims are judged on the whole period.
        raised = [f for f in raised if f.name == "outcome_rate_jump"] + [
            f for f in flags(stats, None, limits) if f.name != "outcome_rate_jump"
        ]
        rows.append(Row(key[0], key[1], stats, compared, baseline, name, raised))
    return rows
