"""An outcome's status under its verification policy, as a pure function of its claim, the
verdicts on it, the signals about it and a time.

A plan's own settings (`core.outcomes.lifecycle`) and an outcome contract's rule
(`contract_lifecycle`, below) are reached through one door, `outcome_lifecycle` and
`outcome_verified_at`, which every caller uses: the invoice run, the listing, the check of a
new verdict, and the re-derivation of an invoice from its rows.

A contract's rule, step by step (docs/contracts.md says the same for its readers):

- The claim is *due* when made; with `inactivity`, once its task has been quiet that long:
  the end of the first span of `inactivity` without a signal on the task after the claim,
  and at most a year after it.
- Acceptance by time alone: with `assume_after`, the claim is deemed accepted at the later
  of its due time and `assume_after` after the claim; with none of `confirm`, `judge` and
  `assume_after`, it is verified by rule when due. An audited claim is never accepted by
  time: an auditor decides.
- Verdicts and follow-up signals are applied in time order (a verdict first at the same
  instant). A follow-up on a claim not yet accepted *holds* it: it is accepted by time no
  more, and waits for a verdict (the customer's, a judge's or an auditor's). A follow-up on
  a verified outcome within the warranty *reverses* it; later, it is ignored.
- The customer's accept or reject counts with `confirm`; a judge's verdict with `judge`,
  once the claim is due; an auditor's always. A reversal needs the warranty.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from payoff.core.contracts import MAX_RULE_US, Contract, Rule, duration_words
from payoff.core.outcomes import (
    Lifecycle,
    LifecycleError,
    Policy,
    Step,
    Verdict,
    audit_sampled,
    lifecycle,
    transition,
    verified_at,
)

JUDGE = "judge"
"""Who a judge's verdict is by, beside `customer` and `auditor`."""


class Signal(NamedTuple):
    """A signal about an outcome (or its task): its name and when it happened."""

    name: str
    at_us: int


def outcome_lifecycle(
    outcome_id: str,
    claimed_at_us: int,
    verdicts: Sequence[Verdict],
    policy: Policy,
    as_of_us: int,
    signals: Sequence[Signal] = (),
    *,
    strict: bool = True,
) -> Lifecycle:
    """The outcome's status as of a time, under its charge's settings or its contract."""
    if policy.contract is None:
        return lifecycle(outcome_id, claimed_at_us, verdicts, policy, as_of_us, strict=strict)
    return contract_lifecycle(
        outcome_id, claimed_at_us, verdicts, signals, policy.contract, as_of_us, strict=strict
    )


def outcome_verified_at(
    outcome_id: str,
    claimed_at_us: int,
    verdicts: Sequence[Verdict],
    policy: Policy,
    as_of_us: int,
    signals: Sequence[Signal] = (),
) -> int | None:
    """When the outcome was verified, if it is verified (and not reversed) as of the time."""
    contract = policy.contract
    if contract is None:
        return verified_at(outcome_id, claimed_at_us, verdicts, policy, as_of_us)
    rule = contract.rule
    if not verdicts and not signals and not _audited(outcome_id, rule):
        # Most claims: no verdict, no signal. Time alone decides, if anything does.
        accepted = acceptance_at(claimed_at_us, due_at(claimed_at_us, (), rule), rule)
        return accepted if accepted is not None and accepted <= as_of_us else None
    life = contract_lifecycle(
        outcome_id, claimed_at_us, verdicts, signals, contract, as_of_us, strict=False
    )
    return life.verified_at_us if life.status == "verified" else None


def due_at(claimed_at_us: int, activity_us: Sequence[int], rule: Rule) -> int:
    """When the claim is due: when made, or with `inactivity` at the end of the first span
    that long without activity on its task after the claim (at most a year after it)."""
    quiet = rule.inactivity_us
    if quiet is None:
        return claimed_at_us
    quiet_from = claimed_at_us
    for at in sorted(activity_us):
        if at <= quiet_from:
            continue
        if at - quiet_from >= quiet:
            break
        quiet_from = at
    return min(quiet_from + quiet, claimed_at_us + MAX_RULE_US)


def acceptance_at(claimed_at_us: int, due_us: int, rule: Rule) -> int | None:
    """When an undecided claim nobody holds is accepted by time alone; None: never."""
    if rule.assume_after_us is not None:
        return max(due_us, claimed_at_us + rule.assume_after_us)
    if not rule.confirm and rule.judge is None:
        return due_us
    return None


def _audited(outcome_id: str, rule: Rule) -> bool:
    return rule.audit_rate > 0 and audit_sampled(outcome_id, rule.audit_rate)


class _Walk:
    """The state of one claim while its verdicts and signals are applied in time order."""

    def __init__(self, claimed_at_us: int, rule: Rule, audited: bool, due_us: int) -> None:
        self.rule = rule
        self.audited = audited
        self.due_us = due_us
        self.claimed_at_us = claimed_at_us
        self.accepted_at_us = None if audited else acceptance_at(claimed_at_us, due_us, rule)
        self.status = "claimed"
        self.held = False
        self.steps = [Step("claimed", "rule", claimed_at_us)]

    def accept_by_time(self, before_us: int) -> None:
        """Accept the claim by time if its moment comes before `before_us` (inclusive when
        `before_us` is the as-of time: pass it plus one)."""
        at = self.accepted_at_us
        if at is None or self.held or self.status != "claimed" or not at < before_us:
            return
        self.status = "verified"
        if self.rule.assume_after_us is not None:
            self.steps.append(Step("verified", "deemed", at, "no follow-up in time"))
        else:
            self.steps.append(Step("verified", "rule", at))

    def follow_up(self, signal: Signal) -> None:
        reason = f"follow-up {signal.name}"
        if self.status == "claimed" and not self.held:
            self.held = True
            self.steps.append(Step("held", "signal", signal.at_us, reason))
        elif self.status == "verified":
            try:
                self._check_warranty(signal.at_us)
            except LifecycleError as exc:
                self.steps.append(Step("ignored", "signal", signal.at_us, f"{reason}: {exc}"))
                return
            self.status = "reversed"
            self.steps.append(Step("reversed", "signal", signal.at_us, reason))

    def verdict(self, verdict: Verdict) -> None:
        """Apply a verdict; LifecycleError when the rule or the lifecycle refuses it."""
        if verdict.at_us < self.claimed_at_us:
            raise LifecycleError("a verdict cannot be dated before the claim")
        if self.status == "claimed":
            self._check_decider(verdict)
        if self.status == "verified" and verdict.action == "verify":
            return  # a confirmation of what is already verified changes nothing
        new = transition(self.status, verdict.action)
        if verdict.action == "reverse":
            self._check_warranty(verdict.at_us)
        self.status = new
        self.steps.append(Step(new, verdict.by, verdict.at_us, verdict.reason))

    def _check_decider(self, verdict: Verdict) -> None:
        if verdict.by == "customer" and self.audited:
            raise LifecycleError("this outcome is verified by audit, not by the customer")
        if verdict.by == "customer" and not self.rule.confirm:
            raise LifecycleError("this outcome's contract does not ask the customer to confirm")
        if verdict.by == JUDGE and self.rule.judge is None:
            raise LifecycleError("this outcome's contract names no judge")
        if verdict.by == JUDGE and self.audited:
            raise LifecycleError("this outcome is in the audit sample: an auditor decides")
        if verdict.by == JUDGE and verdict.at_us < self.due_us:
            raise LifecycleError("a judge's verdict before the outcome is due")

    def _check_warranty(self, at_us: int) -> None:
        warranty = self.rule.warranty_us
        if warranty is None:
            raise LifecycleError("this outcome's contract has no warranty: it cannot be reversed")
        verified = next(s.at_us for s in self.steps if s.status == "verified")
        if at_us > verified + warranty:
            raise LifecycleError(f"the {duration_words(warranty)} warranty has ended")


def contract_lifecycle(
    outcome_id: str,
    claimed_at_us: int,
    verdicts: Sequence[Verdict],
    signals: Sequence[Signal],
    contract: Contract,
    as_of_us: int,
    *,
    strict: bool = True,
) -> Lifecycle:
    """The outcome's status under a contract's rule as of a time (the module's docstring).

    Verdicts and signals dated after `as_of_us` are left out. A verdict the rule or the
    lifecycle refuses raises LifecycleError when `strict`, and is otherwise kept as an
    `ignored` step that changes nothing.
    """
    rule = contract.rule
    known = [s for s in signals if s.at_us <= as_of_us]
    due = due_at(claimed_at_us, [s.at_us for s in known], rule)
    walk = _Walk(claimed_at_us, rule, _audited(outcome_id, rule), due)
    # A follow-up answers a claim already made: a reopening before this claim (of an earlier
    # resolution on the same task) neither holds nor reverses it.
    follow_ups = [s for s in known if s.name in rule.follow_up and s.at_us > claimed_at_us]
    timeline: list[tuple[int, int, Verdict | Signal]] = [
        (v.at_us, 0, v) for v in verdicts if v.at_us <= as_of_us
    ]
    timeline += [(s.at_us, 1, s) for s in follow_ups]
    timeline.sort(key=lambda entry: entry[:2])  # stable: verdicts keep their given order
    for at_us, _, item in timeline:
        walk.accept_by_time(at_us)
        if isinstance(item, Signal):
            walk.follow_up(item)
            continue
        try:
            walk.verdict(item)
        except LifecycleError as exc:
            if strict:
                raise
            walk.steps.append(Step("ignored", item.by, item.at_us, str(exc)))
    walk.accept_by_time(as_of_us + 1)
    return Lifecycle(walk.status, tuple(walk.steps), walk.audited)
