"""The pure rule of an outcome contract: a claim's status from its verdicts, its signals and
a time (core.contract_rules). Table-driven; no ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest

from payoff.core.contract_rules import (
    JUDGE,
    Signal,
    contract_lifecycle,
    due_at,
    outcome_lifecycle,
    outcome_verified_at,
)
from payoff.core.contracts import Contract, Judge, Rule, Unit, parse_duration
from payoff.core.outcomes import LifecycleError, Policy, Verdict, audit_sampled

HOUR = 3600 * 10**6
DAY = 24 * HOUR
CLAIM = 1_000 * DAY


def contract(**rule: object) -> Contract:
    return Contract("c", 1, "ticket.resolved", Unit("resolution", "resolutions"), Rule(**rule))  # type: ignore[arg-type]


INTERCOM = dict(
    confirm=True,
    assume_after_us=24 * HOUR,
    follow_up=("conversation.reopened",),
    warranty_us=30 * DAY,
)
ZENDESK = dict(inactivity_us=72 * HOUR, judge=Judge(command=("judge",)))


def status(
    rule: dict[str, object],
    at: int,
    verdicts: tuple[Verdict, ...] = (),
    signals: tuple[Signal, ...] = (),
    outcome_id: str = "o1",
) -> tuple[str, list[tuple[str, str, int]]]:
    life = contract_lifecycle(
        outcome_id, CLAIM, verdicts, signals, contract(**rule), at, strict=False
    )
    return life.status, [(s.status, s.by, s.at_us - CLAIM) for s in life.steps[1:]]


def accept(at: int, by: str = "customer") -> Verdict:
    return Verdict("verify", by, CLAIM + at)


def reject(at: int, by: str = "customer") -> Verdict:
    return Verdict("reject", by, CLAIM + at)


def reopened(at: int) -> Signal:
    return Signal("conversation.reopened", CLAIM + at)


@pytest.mark.parametrize(
    ("rule", "at", "verdicts", "signals", "expected"),
    [
        # Every action billable: verified by rule when claimed.
        ({}, CLAIM, (), (), ("verified", [("verified", "rule", 0)])),
        # Intercom: assumed 24 h after the claim when no further help is asked.
        (INTERCOM, CLAIM + 23 * HOUR, (), (), ("claimed", [])),
        (INTERCOM, CLAIM + 24 * HOUR, (), (), ("verified", [("verified", "deemed", 24 * HOUR)])),
        # ... or confirmed by the customer before then.
        (
            INTERCOM, CLAIM + 2 * DAY, (accept(HOUR),), (),
            ("verified", [("verified", "customer", HOUR)]),
        ),
        (
            INTERCOM, CLAIM + 2 * DAY, (reject(HOUR),), (),
            ("rejected", [("rejected", "customer", HOUR)]),
        ),
        # A follow-up before acceptance holds it: no deemed acceptance, ever.
        (
            INTERCOM, CLAIM + 40 * DAY, (), (reopened(HOUR),),
            ("claimed", [("held", "signal", HOUR)]),
        ),
        # ... and a held claim is still decided by the customer.
        (
            INTERCOM, CLAIM + 40 * DAY, (accept(2 * DAY),), (reopened(HOUR),),
            ("verified", [("held", "signal", HOUR), ("verified", "customer", 2 * DAY)]),
        ),
        # A follow-up after acceptance, inside the warranty, reverses it.
        (
            INTERCOM, CLAIM + 40 * DAY, (), (reopened(10 * DAY),),
            ("reversed", [("verified", "deemed", DAY), ("reversed", "signal", 10 * DAY)]),
        ),
        # ... after the warranty, it is ignored.
        (
            INTERCOM, CLAIM + 40 * DAY, (), (reopened(32 * DAY),),
            ("verified", [("verified", "deemed", DAY), ("ignored", "signal", 32 * DAY)]),
        ),
        # A follow-up after the as-of time is not known yet.
        (
            INTERCOM, CLAIM + 5 * DAY, (), (reopened(10 * DAY),),
            ("verified", [("verified", "deemed", DAY)]),
        ),
        # Zendesk: nothing before 72 h of inactivity; then the judge decides.
        (ZENDESK, CLAIM + 10 * DAY, (), (), ("claimed", [])),
        (
            ZENDESK, CLAIM + 10 * DAY, (accept(4 * DAY, JUDGE),), (),
            ("verified", [("verified", JUDGE, 4 * DAY)]),
        ),
        (
            ZENDESK, CLAIM + 10 * DAY, (reject(4 * DAY, JUDGE),), (),
            ("rejected", [("rejected", JUDGE, 4 * DAY)]),
        ),
        # A judge's verdict before the claim is due is refused (kept, ignored).
        (
            ZENDESK, CLAIM + 10 * DAY, (accept(HOUR, JUDGE),), (),
            ("claimed", [("ignored", JUDGE, HOUR)]),
        ),
        # ... and so is a customer's acceptance when the contract does not ask for one.
        (
            ZENDESK, CLAIM + 10 * DAY, (accept(HOUR),), (),
            ("claimed", [("ignored", "customer", HOUR)]),
        ),
        # An auditor decides whatever the rule.
        (
            ZENDESK, CLAIM + 10 * DAY, (reject(HOUR, "auditor"),), (),
            ("rejected", [("rejected", "auditor", HOUR)]),
        ),
        # A reversal without a warranty is refused.
        (
            {}, CLAIM + DAY, (Verdict("reverse", "customer", CLAIM + HOUR),), (),
            ("verified", [("verified", "rule", 0), ("ignored", "customer", HOUR)]),
        ),
        # A judge's verdict under a contract without a judge is refused.
        (INTERCOM, CLAIM + HOUR, (accept(60, JUDGE),), (), ("claimed", [("ignored", JUDGE, 60)])),
    ],
)  # fmt: skip
def test_a_contract_rule_decides_a_claim(
    rule: dict[str, object],
    at: int,
    verdicts: tuple[Verdict, ...],
    signals: tuple[Signal, ...],
    expected: tuple[str, list[tuple[str, str, int]]],
) -> None:
    assert status(rule, at, verdicts, signals) == expected


def test_inactivity_waits_for_the_first_quiet_span_after_the_claim() -> None:
    rule = Rule(inactivity_us=72 * HOUR)
    assert due_at(CLAIM, [], rule) == CLAIM + 72 * HOUR
    # Activity 10 h and 80 h after the claim: quiet from 80 h, due at 152 h.
    activity = [CLAIM + 10 * HOUR, CLAIM + 80 * HOUR, CLAIM + 300 * HOUR]
    assert due_at(CLAIM, activity, rule) == CLAIM + 152 * HOUR
    # Activity before the claim does not count; a task never quiet is due a year after.
    assert due_at(CLAIM, [CLAIM - HOUR], rule) == CLAIM + 72 * HOUR
    busy = [CLAIM + n * 71 * HOUR for n in range(1, 200)]
    assert due_at(CLAIM, busy, rule) == CLAIM + 365 * DAY
    # Verified by rule when due, so any signal on the task moves the acceptance.
    signal = (Signal("message.received", CLAIM + 10 * HOUR),)
    assert status({"inactivity_us": 72 * HOUR}, CLAIM + 81 * HOUR, (), signal) == ("claimed", [])
    assert status({"inactivity_us": 72 * HOUR}, CLAIM + 82 * HOUR, (), signal) == (
        "verified",
        [("verified", "rule", 82 * HOUR)],
    )


def test_a_follow_up_before_the_claim_neither_holds_nor_reverses_it() -> None:
    """A conversation reopened (after an earlier resolution) and then resolved again: the new
    claim is deemed accepted 24 h after it is made, as if the reopening had not happened."""
    earlier = (reopened(-2 * HOUR),)
    assert status(INTERCOM, CLAIM + 23 * HOUR, signals=earlier) == ("claimed", [])
    assert status(INTERCOM, CLAIM + 24 * HOUR, signals=earlier) == (
        "verified",
        [("verified", "deemed", 24 * HOUR)],
    )
    later = (*earlier, reopened(30 * HOUR))
    assert status(INTERCOM, CLAIM + 2 * DAY, signals=later)[0] == "reversed"


def test_assume_after_counts_from_the_claim_and_never_before_the_claim_is_due() -> None:
    rule = {"assume_after_us": 24 * HOUR, "inactivity_us": 72 * HOUR}
    assert status(rule, CLAIM + 71 * HOUR) == ("claimed", [])
    assert status(rule, CLAIM + 72 * HOUR) == ("verified", [("verified", "deemed", 72 * HOUR)])


def test_an_audited_claim_waits_for_the_auditor_and_refuses_the_customer() -> None:
    sampled = next(f"o{n}" for n in range(1000) if audit_sampled(f"o{n}", Decimal("0.5")))
    rule = {**INTERCOM, "audit_rate": Decimal("0.5")}
    found = status(rule, CLAIM + 40 * DAY, (accept(HOUR),), outcome_id=sampled)
    assert found == ("claimed", [("ignored", "customer", HOUR)])
    decided = status(rule, CLAIM + 40 * DAY, (accept(HOUR, "auditor"),), outcome_id=sampled)
    assert decided == ("verified", [("verified", "auditor", HOUR)])


def test_strict_mode_raises_the_reason_a_verdict_is_refused() -> None:
    with pytest.raises(LifecycleError, match="does not ask the customer to confirm"):
        contract_lifecycle("o1", CLAIM, [accept(HOUR)], [], contract(**ZENDESK), CLAIM + DAY)
    with pytest.raises(LifecycleError, match="30d warranty has ended"):
        contract_lifecycle(
            "o1", CLAIM, [Verdict("reverse", "customer", CLAIM + 40 * DAY)], [],
            contract(**INTERCOM), CLAIM + 50 * DAY,
        )  # fmt: skip


def test_the_quick_path_agrees_with_the_whole_lifecycle() -> None:
    """`outcome_verified_at` skips the walk when nothing but time decides: same answer."""
    for rule in ({}, INTERCOM, ZENDESK, {"assume_after_us": DAY, "inactivity_us": 3 * DAY}):
        policy = Policy(contract=contract(**rule))
        for at in (CLAIM, CLAIM + DAY, CLAIM + 3 * DAY, CLAIM + 10 * DAY):
            life = outcome_lifecycle("o1", CLAIM, [], policy, at)
            expected = life.verified_at_us if life.status == "verified" else None
            assert outcome_verified_at("o1", CLAIM, [], policy, at) == expected


def test_durations() -> None:
    assert parse_duration("72h") == 72 * HOUR
    assert parse_duration("90d") == 90 * DAY
    for bad in ("0h", "24 h", "1.5d", "24", "h", "-1d", "1w"):
        with pytest.raises(ValueError, match="a duration like 24h"):
            parse_duration(bad)
