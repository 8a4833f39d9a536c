"""Outcome lifecycles, pure: transitions, deemed acceptance, audit sampling, warranties."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from payoff.core.integrity import FLAG_RULES, OutcomeStats, Thresholds, flags
from payoff.core.outcomes import (
    TRANSITIONS,
    US_PER_DAY,
    LifecycleError,
    Policy,
    Verdict,
    audit_sampled,
    lifecycle,
    transition,
)

CLAIMED = 1_793_700_000 * 10**6
DAY = US_PER_DAY
CUSTOMER = Policy("customer", accept_after_days=7, warranty_days=90)
STATUSES = ("claimed", "verified", "rejected", "reversed")
ACTIONS = ("verify", "reject", "reverse")


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_transition_legal_or_refused(status: str, action: str) -> None:
    if (status, action) in TRANSITIONS:
        assert transition(status, action) == TRANSITIONS[(status, action)]
    else:
        with pytest.raises(LifecycleError, match=f"cannot {action} an outcome that is {status}"):
            transition(status, action)


def test_without_verification_a_claim_counts_when_made() -> None:
    result = lifecycle("o1", CLAIMED, [], Policy("none"), CLAIMED)
    assert (result.status, result.verified_at_us, result.verified_by) == (
        "verified",
        CLAIMED,
        "rule",
    )


def test_customer_acceptance_and_rejection() -> None:
    accepted = lifecycle(
        "o1", CLAIMED, [Verdict("verify", "customer", CLAIMED + DAY)], CUSTOMER, CLAIMED + 2 * DAY
    )
    assert (accepted.status, accepted.verified_by) == ("verified", "customer")
    rejected = lifecycle(
        "o1",
        CLAIMED,
        [Verdict("reject", "customer", CLAIMED + DAY, "wrong")],
        CUSTOMER,
        CLAIMED + 30 * DAY,
    )
    assert rejected.status == "rejected" and rejected.steps[-1].reason == "wrong"


def test_deemed_acceptance_at_the_exact_boundary() -> None:
    deadline = CLAIMED + 7 * DAY
    assert lifecycle("o1", CLAIMED, [], CUSTOMER, deadline - 1).status == "claimed"
    at = lifecycle("o1", CLAIMED, [], CUSTOMER, deadline)
    assert (at.status, at.verified_by, at.verified_at_us) == ("verified", "deemed", deadline)
    # A rejection at the deadline itself is still in time; one microsecond later is not.
    in_time = lifecycle(
        "o1", CLAIMED, [Verdict("reject", "customer", deadline)], CUSTOMER, deadline + DAY
    )
    assert in_time.status == "rejected"
    with pytest.raises(LifecycleError, match="cannot reject an outcome that is verified"):
        lifecycle(
            "o1", CLAIMED, [Verdict("reject", "customer", deadline + 1)], CUSTOMER, deadline + DAY
        )


def test_verdicts_after_the_as_of_time_do_not_count() -> None:
    verdicts = [Verdict("reject", "customer", CLAIMED + DAY)]
    assert lifecycle("o1", CLAIMED, verdicts, CUSTOMER, CLAIMED + DAY - 1).status == "claimed"


def test_reversal_inside_and_after_the_warranty() -> None:
    accepted = Verdict("verify", "customer", CLAIMED)
    last_day = CLAIMED + 90 * DAY
    inside = lifecycle(
        "o1", CLAIMED, [accepted, Verdict("reverse", "customer", last_day)], CUSTOMER, last_day
    )
    assert inside.status == "reversed"
    with pytest.raises(LifecycleError, match="90-day warranty of this outcome has ended"):
        lifecycle(
            "o1",
            CLAIMED,
            [accepted, Verdict("reverse", "customer", last_day + 1)],
            CUSTOMER,
            last_day + 1,
        )
    with pytest.raises(LifecycleError, match="no warranty"):
        lifecycle("o1", CLAIMED, [Verdict("reverse", "customer", CLAIMED)], Policy("none"), CLAIMED)


def test_audit_sample_is_deterministic_and_near_its_rate() -> None:
    rate, trials = Decimal("0.05"), 10_000
    sampled = [audit_sampled(f"out_{i}", rate) for i in range(trials)]
    assert sampled == [audit_sampled(f"out_{i}", rate) for i in range(trials)]
    # Within 4 standard deviations of the binomial mean (a false alarm about once in 15,000).
    mean, sd = trials * 0.05, math.sqrt(trials * 0.05 * 0.95)
    assert abs(sum(sampled) - mean) < 4 * sd
    assert not any(audit_sampled(f"out_{i}", Decimal(0)) for i in range(100))
    assert all(audit_sampled(f"out_{i}", Decimal(1)) for i in range(100))


def test_audited_claims_wait_for_the_auditor() -> None:
    policy = Policy("audit", warranty_days=30, audit_rate=Decimal("0.5"))
    ids = [f"o{i}" for i in range(40)]
    waiting = [i for i in ids if audit_sampled(i, policy.audit_rate)]
    passing = [i for i in ids if not audit_sampled(i, policy.audit_rate)]
    assert waiting and passing
    assert lifecycle(passing[0], CLAIMED, [], policy, CLAIMED).status == "verified"
    assert lifecycle(waiting[0], CLAIMED, [], policy, CLAIMED + 99 * DAY).status == "claimed"
    audited = lifecycle(
        waiting[0],
        CLAIMED,
        [Verdict("reject", "auditor", CLAIMED + DAY, "no")],
        policy,
        CLAIMED + DAY,
    )
    assert (audited.status, audited.audited) == ("rejected", True)
    with pytest.raises(LifecycleError, match="verified by audit"):
        lifecycle(waiting[0], CLAIMED, [Verdict("verify", "customer", CLAIMED)], policy, CLAIMED)


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        (Policy("manual"), "verification: one of"),
        (Policy("customer", accept_after_days=-1), "accept_after_days: must not be negative"),
        (Policy("audit"), "audit_rate: an audit policy needs a positive rate"),
        (Policy("audit", audit_rate=Decimal(2)), "audit_rate: a share from 0 to 1"),
    ],
)
def test_invalid_policies(policy: Policy, message: str) -> None:
    assert any(message in error for error in policy.validate())


def test_accepting_a_verified_outcome_confirms_it() -> None:
    result = lifecycle(
        "o1", CLAIMED, [Verdict("verify", "customer", CLAIMED + DAY)], Policy("none"), CLAIMED + DAY
    )
    assert (result.status, result.verified_at_us, result.verified_by) == (
        "verified",
        CLAIMED,
        "rule",
    )
    with pytest.raises(LifecycleError, match="cannot reject an outcome that is verified"):
        lifecycle(
            "o1",
            CLAIMED,
            [Verdict("reject", "customer", CLAIMED + DAY)],
            Policy("none"),
            CLAIMED + DAY,
        )


def test_the_outcome_lifecycle_table_is_the_issues() -> None:
    assert TRANSITIONS == {
        ("claimed", "verify"): "verified",
        ("claimed", "reject"): "rejected",
        ("verified", "reverse"): "reversed",
    }


def test_the_audit_sample_is_pinned_across_processes_and_versions() -> None:
    # sha256 of the id: the same answers on every machine, forever.
    expected = [False, True, False, True, True, True, False, True, True, False, True, False]
    assert [audit_sampled(f"out_{i}", Decimal("0.5")) for i in range(12)] == expected


def test_stored_verdicts_out_of_order_are_ignored_when_replayed() -> None:
    verdicts = [
        Verdict("reject", "customer", CLAIMED + DAY),
        Verdict("verify", "auditor", CLAIMED - DAY),
    ]
    result = lifecycle("o1", CLAIMED, verdicts, Policy("none"), CLAIMED + 2 * DAY, strict=False)
    assert result.status == "verified"
    assert [s.status for s in result.steps].count("ignored") == 2
    with pytest.raises(LifecycleError, match="before the claim"):
        lifecycle("o1", CLAIMED, verdicts[1:], Policy("none"), CLAIMED + 2 * DAY)


def test_windows_are_capped_at_a_year() -> None:
    assert any(
        "at most 365 days" in e for e in Policy("customer", accept_after_days=400).validate()
    )


def test_every_flag_says_why_with_its_numbers() -> None:
    before = OutcomeStats(claims=20, verified=18, tasks=40, cost_nanousd=2_000_000)
    now = OutcomeStats(
        claims=40, verified=20, rejected=10, reversed=5, pending=5, audited=6,
        audit_decided=5, audit_rejected=2, stale=3, tasks=40, cost_nanousd=2_000_000,
        evidence_mismatches=2,
    )  # fmt: skip
    assert [rule.name for rule in FLAG_RULES] == [f.name for f in flags(now, before, Thresholds())]
    assert [f.why for f in flags(now, before, Thresholds())] == [
        "claims per task 0.5000 -> 1.0000 (+100.0%) while cost per claim fell 50.0%: "
        "the bar for claiming may have been lowered",
        "auditors rejected 2 of the 5 sampled claims they decided (40.0%; 6 sampled)",
        "10 of 40 claims rejected (25.0%)",
        "5 of 25 verified claims reversed (20.0%)",
        "2 evidence openings did not match the commitment their outcome carries",
        "3 claims pending for more than 14 days",
    ]
    assert flags(now, None, Thresholds())[0].name == "audit_disagreement"
