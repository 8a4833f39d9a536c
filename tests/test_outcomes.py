"""Outcomes you can trust: verification, billing once, warranties, credit notes, integrity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec
import pytest

from factories import OUTCOME_PLAN as PLAN
from factories import attestation as verdict
from factories import outcome, tool_usage
from payoff.core.outcomes import LifecycleError
from payoff.service import ingest_lines, integrity, invoices, plans
from payoff.service import outcomes as service
from payoff.store import open_store
from payoff.store.protocol import Store


def usage(id: str, task: str, time: str, customer: str = "c") -> dict[str, Any]:
    return tool_usage(id, task=task, time=time, customer=customer)


def claim(id: str, task: str, time: str, customer: str = "c") -> dict[str, Any]:
    return outcome(id, task, customer, time=time, value=None)


def ingest(store: Store, *records: dict[str, Any]) -> Any:
    lines = [(n, msgspec.json.encode(r)) for n, r in enumerate(records, start=1)]
    return ingest_lines(store, lines, workers=0)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = open_store(tmp_path / "l.db")
    (tmp_path / "plan.yaml").write_text(PLAN)
    plans.apply_plan(opened, tmp_path / "plan.yaml")
    plans.subscribe(opened, "c", "outcomes", dt.date(2026, 9, 1))
    return opened


def billed(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (f.get("late_period", document["period"]), f["charge"], f["units"])
        for f in document["fees"]
    ]


def test_each_verified_outcome_is_billed_once_in_the_period_it_is_verified(store: Store) -> None:
    report = ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"), claim("o1", "t1", "2026-10-02T00:00:00Z"),
        usage("u2", "t2", "2026-10-01T00:00:00Z"), claim("o2", "t2", "2026-10-28T00:00:00Z"),
        usage("u3", "t3", "2026-10-01T00:00:00Z"), claim("o3", "t3", "2026-10-03T00:00:00Z"),
        verdict("a1", "o1", "accept", "2026-10-03T00:00:00Z"),  # verified in October
        verdict("a3", "o3", "reject", "2026-10-04T00:00:00Z"),  # never billed
    )  # fmt: skip
    assert report.clean
    # o2 has no verdict: deemed verified seven days after its claim, in November.
    october = invoices.run_invoices(store, "2026-10")[0]
    assert billed(october) == [("2026-10", "resolved", "1")]
    invoices.act_on_invoice(store, october["id"], "finalize")
    november = invoices.run_invoices(store, "2026-11")[0]
    assert billed(november) == [("2026-11", "resolved", "1")]
    states = {s.outcome.id: s.lifecycle for s in service.list_states(store)}
    assert states["o2"].verified_by == "deemed"
    assert states["o3"].status == "rejected"


def test_a_reversal_inside_the_warranty_is_credited(store: Store) -> None:
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        verdict("a1", "o1", "accept", "2026-10-03T00:00:00Z"),
    )
    october = invoices.run_invoices(store, "2026-10")[0]
    invoices.act_on_invoice(store, october["id"], "finalize")
    assert ingest(store, verdict("a2", "o1", "reverse", "2026-11-10T00:00:00Z")).clean
    november = invoices.run_invoices(store, "2026-11")[0]
    assert [
        (f["late_period"], f["charge"], f["amount"]) for f in november["fees"] if "late_period" in f
    ] == [("2026-10", "resolved", "-1.00")]
    invoices.act_on_invoice(store, november["id"], "finalize")
    (note,) = invoices.invoice_document(store, october["id"])["credit_notes"]
    assert (note["invoice"], note["applied_on"], note["total"]) == (
        october["id"],
        november["id"],
        "-1.00",
    )
    # Nothing finalized was edited: October still says what it said.
    assert invoices.invoice_document(store, october["id"])["total"] == october["total"]


def test_a_reversal_after_the_warranty_is_refused(store: Store) -> None:
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        verdict("a1", "o1", "accept", "2026-10-03T00:00:00Z"),
    )
    late = ingest(store, verdict("a2", "o1", "reverse", "2027-01-02T00:00:00Z"))
    assert late.counts()["rejected"] == 1
    assert "90-day warranty of this outcome has ended" in late.problems[0].reason
    assert late.problems[0].field == "verdict"


def test_attestations_refused_and_nothing_else_changes(store: Store) -> None:
    ingest(
        store, usage("u1", "t1", "2026-10-01T00:00:00Z"), claim("o1", "t1", "2026-10-02T00:00:00Z")
    )
    report = ingest(
        store,
        verdict("a0", "o-unknown", "accept", "2026-10-03T00:00:00Z"),
        verdict("a1", "o1", "reverse", "2026-10-03T00:00:00Z"),  # out of order: not verified
        verdict("a2", "o1", "reject", "2026-10-03T00:00:00Z"),
        verdict("a3", "o1", "accept", "2026-10-04T00:00:00Z"),  # conflicts with the rejection
    )  # fmt: skip
    assert report.counts() == {"accepted": 1, "duplicates": 0, "conflicts": 0, "rejected": 3}
    reasons = [p.reason for p in report.problems]
    assert reasons == [
        "unknown outcome `o-unknown`",
        "cannot reverse an outcome that is claimed",
        "cannot verify an outcome that is rejected",
    ]
    assert [s.lifecycle.status for s in service.list_states(store)] == ["rejected"]


def test_operators_decide_and_the_warranty_binds_them_too(store: Store, tmp_path: Path) -> None:
    audit = PLAN.replace("id: outcomes", "id: audited").replace(
        "verification: customer", 'verification: audit\n    audit_rate: "1"'
    )
    (tmp_path / "audit.yaml").write_text(audit)
    plans.apply_plan(store, tmp_path / "audit.yaml")
    plans.subscribe(store, "d", "audited", dt.date(2026, 9, 1))
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z", "d"),
        claim("o1", "t1", "2026-10-02T00:00:00Z", "d"),
    )
    assert service.list_states(store, "d")[0].lifecycle.status == "claimed"  # sampled: waits
    with pytest.raises(LifecycleError, match="verified by audit, not by the customer"):
        service.check_verdict(
            store,
            service.list_states(store, "d")[0].outcome,
            service.Verdict("verify", "customer", 1_800_000_000 * 10**6),
        )
    state = service.decide(store, "o1", "reject", "auditor", "no ticket found")
    assert (state.lifecycle.status, state.lifecycle.steps[-1].reason) == (
        "rejected",
        "no ticket found",
    )
    with pytest.raises(service.OutcomeError, match="cannot verify an outcome that is rejected"):
        service.decide(store, "o1", "verify", "auditor", None)


def _month(
    store: Store,
    customer: str,
    claims_per_task: int,
    start: int,
    days: int,
    tasks: int,
    reject_every: int,
) -> None:
    records: list[dict[str, Any]] = []
    for n in range(tasks):
        day = start + (n * days) // tasks
        when = f"2026-11-{day:02d}T10:00:00Z"
        task = f"{customer}-{start}-t{n}"
        records.append(usage(f"{task}-u", task, when, customer))
        for k in range(claims_per_task):
            outcome = f"{task}-o{k}"
            records.append(claim(outcome, task, when, customer))
            answer = "reject" if (n * claims_per_task + k) % reject_every == 0 else "accept"
            records.append(verdict(f"{outcome}-a", outcome, answer, when.replace("10:", "11:")))
    assert ingest(store, *records).clean


def test_integrity_flags_an_over_claiming_customer_and_not_a_clean_one(store: Store) -> None:
    for customer in ("honest", "greedy"):
        plans.subscribe(store, customer, "outcomes", dt.date(2026, 9, 1))
    _month(store, "honest", 1, 1, 28, 60, reject_every=50)
    _month(store, "greedy", 1, 1, 14, 30, reject_every=50)  # first half: like honest
    _month(store, "greedy", 3, 16, 14, 30, reject_every=3)  # then three claims a task
    rows = {r.customer: r for r in integrity.report(store, "2026-11")}
    assert rows["honest"].flags == []
    names = {f.name for f in rows["greedy"].flags}
    assert {"outcome_rate_jump", "high_disputes"} <= names
    why = next(f.why for f in rows["greedy"].flags if f.name == "outcome_rate_jump")
    assert "claims per task" in why and "%" in why


def test_integrity_flags_fire_on_constructed_stats() -> None:
    from decimal import Decimal

    from payoff.core.integrity import OutcomeStats, Thresholds, flags

    limits = Thresholds()
    clean = OutcomeStats(claims=100, verified=95, rejected=5, tasks=100, cost_nanousd=10**9)
    assert flags(clean, clean, limits) == []
    audited = OutcomeStats(
        claims=100,
        verified=90,
        rejected=10,
        audited=10,
        audit_decided=10,
        audit_rejected=5,
        tasks=100,
        cost_nanousd=10**9,
    )
    assert [f.name for f in flags(audited, clean, limits)] == ["audit_disagreement"]
    reversing = OutcomeStats(claims=100, verified=80, reversed=20, tasks=100, cost_nanousd=10**9)
    assert [f.name for f in flags(reversing, clean, limits)] == ["high_reversals"]
    stale = OutcomeStats(claims=100, verified=98, stale=2, tasks=100, cost_nanousd=10**9)
    assert [f.name for f in flags(stale, clean, limits)] == ["stale_claims"]
    strict = Thresholds(high_disputes=Decimal("0.04"))
    assert [f.name for f in flags(clean, clean, strict)] == ["high_disputes"]


def test_the_demo_flags_the_over_claiming_customer_and_no_other(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from payoff.cli import app

    result = CliRunner().invoke(app, ["demo", "--db", str(tmp_path / "demo.db")])
    assert result.exit_code == 0, result.output
    assert "Flagged: umbrella." in result.stdout
    flags = [line for line in result.stdout.splitlines() if line.startswith("FLAG ")]
    assert flags and all(" umbrella " in line for line in flags)


def test_outcome_commands(store: Store, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from payoff.cli import app

    audited = PLAN.replace("id: outcomes", "id: audited").replace(
        "verification: customer", 'verification: audit\n    audit_rate: "1"'
    )
    (tmp_path / "audit.yaml").write_text(audited)
    plans.apply_plan(store, tmp_path / "audit.yaml")
    plans.subscribe(store, "d", "audited", dt.date(2026, 9, 1))
    # Every claim is sampled: it waits for an auditor, whatever the date.
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z", "d"),
        claim("o1", "t1", "2026-10-02T00:00:00Z", "d"),
    )
    db = str(store.path)  # type: ignore[attr-defined]
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["--db", db, "outcomes", "list", "--json"]).stdout)
    assert [(o["id"], o["status"], o["verification"]) for o in listed] == [
        ("o1", "claimed", "audit")
    ]
    result = runner.invoke(app, ["--db", db, "outcomes", "reject", "o1", "--reason", "dup"])
    assert result.exit_code == 0 and "o1 rejected" in result.stdout
    again = runner.invoke(app, ["--db", db, "outcomes", "verify", "o1"])
    assert again.exit_code != 0
    report = json.loads(
        runner.invoke(app, ["--db", db, "integrity", "--period", "2026-10", "--json"]).stdout
    )
    assert (report[0]["claims"], report[0]["rejected"], report[0]["audit_sample"]) == (1, 1, 1)


def test_a_plan_change_that_puts_a_stored_verdict_out_of_order_breaks_nothing(
    store: Store, tmp_path: Path
) -> None:
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        verdict("a1", "o1", "reject", "2026-10-03T00:00:00Z"),
    )
    # The customer is moved, back-dated, onto a plan that verifies nothing: under it the
    # stored rejection is out of order. It is kept, shown as ignored, and nothing crashes.
    (tmp_path / "none.yaml").write_text(
        PLAN.replace("id: outcomes", "id: plain").replace(
            "    verification: customer\n    accept_after_days: 7\n    warranty_days: 90\n", ""
        )
    )
    plans.apply_plan(store, tmp_path / "none.yaml")
    plans.subscribe(store, "c", "plain", dt.date(2026, 9, 15))
    (state,) = service.list_states(store)
    assert state.lifecycle.status == "verified"
    assert state.lifecycle.steps[-1].status == "ignored"
    assert invoices.run_invoices(store, "2026-10")[0]["total"] == "1.00"
    assert integrity.report(store, "2026-10")[0].stats.claims == 1


def test_a_claim_before_the_subscription_does_not_decide_later_claims(store: Store) -> None:
    ingest(
        store,
        usage("u0", "t0", "2026-08-30T00:00:00Z"),
        claim("o0", "t0", "2026-08-31T00:00:00Z"),  # before the 1 September subscription
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-30T00:00:00Z"),
    )  # customer-verified: deemed 6 November
    october = invoices.run_invoices(store, "2026-10")[0]
    assert [f["units"] for f in october["fees"]] == ["0"]


def test_verdicts_dated_before_their_claim_are_refused(store: Store) -> None:
    ingest(
        store, usage("u1", "t1", "2026-10-01T00:00:00Z"), claim("o1", "t1", "2026-10-02T00:00:00Z")
    )
    report = ingest(store, verdict("a1", "o1", "accept", "2026-09-15T00:00:00Z"))
    assert report.problems[0].reason == "a verdict cannot be dated before the claim"


def test_attestations_in_the_file_of_their_outcome(store: Store) -> None:
    report = ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        verdict("a1", "o1", "reverse", "2026-10-03T00:00:00Z"),  # after the accept, by time
        verdict("a2", "o1", "accept", "2026-10-02T12:00:00Z"),
        claim("o2", "t1", "2026-10-02T00:00:00Z"),
        verdict("a3", "o2", "reverse", "2026-10-03T00:00:00Z"),  # o2 is only claimed
    )  # fmt: skip
    assert report.counts()["rejected"] == 1
    assert (report.problems[0].id, report.problems[0].reason) == (
        "a3",
        "cannot reverse an outcome that is claimed",
    )
    statuses = {s.outcome.id: s.lifecycle.status for s in service.list_states(store)}
    assert statuses["o1"] == "reversed"


def test_deemed_exactly_at_the_start_of_a_period_is_billed_in_it(store: Store) -> None:
    # Claimed 24 October 00:00: seven days later is 31 October 00:00, still October.
    # Claimed 25 October 00:00: seven days later is 1 November 00:00, November's first instant.
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-24T00:00:00Z"),
        usage("u2", "t2", "2026-10-01T00:00:00Z"),
        claim("o2", "t2", "2026-10-25T00:00:00Z"),
    )
    october = invoices.run_invoices(store, "2026-10")[0]
    november = invoices.run_invoices(store, "2026-11")[0]
    assert (october["fees"][0]["units"], november["fees"][0]["units"]) == ("1", "1")


def test_the_warranty_binds_operators(store: Store) -> None:
    plans.subscribe(store, "w", "outcomes", dt.date(2026, 1, 1))
    ingest(
        store,
        usage("u1", "t1", "2026-01-01T00:00:00Z", "w"),
        claim("o1", "t1", "2026-01-02T00:00:00Z", "w"),
        verdict("a1", "o1", "accept", "2026-01-03T00:00:00Z"),
    )
    with pytest.raises(service.OutcomeError, match="90-day warranty of this outcome has ended"):
        service.decide(store, "o1", "reverse", "auditor", "too late")


def test_a_late_claim_is_billed_on_the_next_invoice(store: Store) -> None:
    ingest(store, usage("u1", "t1", "2026-09-20T00:00:00Z"))
    for label in ("2026-09", "2026-10"):
        invoices.act_on_invoice(store, invoices.run_invoices(store, label)[0]["id"], "finalize")
    # A claim of 28 September arrives now: deemed on 5 October, an October already billed.
    ingest(store, claim("o1", "t1", "2026-09-28T00:00:00Z"))
    november = invoices.run_invoices(store, "2026-11")[0]
    assert [(f["late_period"], f["amount"]) for f in november["fees"] if "late_period" in f] == [
        ("2026-10", "1.00")
    ]


def test_a_credit_note_applied_on_a_voided_invoice_no_longer_stands(store: Store) -> None:
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        verdict("a1", "o1", "accept", "2026-10-03T00:00:00Z"),
    )
    invoices.act_on_invoice(store, invoices.run_invoices(store, "2026-10")[0]["id"], "finalize")
    ingest(store, verdict("a2", "o1", "reverse", "2026-11-10T00:00:00Z"))
    november = invoices.run_invoices(store, "2026-11")[0]
    invoices.act_on_invoice(store, november["id"], "finalize")
    invoices.act_on_invoice(store, november["id"], "void")
    (note,) = invoices.invoice_document(store, "c-2026-10")["credit_notes"]
    assert note["status"] == "void"


def test_audit_and_stale_flags_through_the_report(store: Store, tmp_path: Path) -> None:
    audited = PLAN.replace("id: outcomes", "id: audited").replace(
        "verification: customer", 'verification: audit\n    audit_rate: "1"'
    )
    (tmp_path / "audit.yaml").write_text(audited)
    plans.apply_plan(store, tmp_path / "audit.yaml")
    plans.subscribe(store, "d", "audited", dt.date(2026, 9, 1))
    records = []
    for n in range(12):
        records += [
            usage(f"u{n}", f"t{n}", "2026-10-01T00:00:00Z", "d"),
            claim(f"o{n}", f"t{n}", "2026-10-02T00:00:00Z", "d"),
        ]
    ingest(store, *records)
    for n, action in enumerate(["reject", "reject", "verify", "verify"]):
        service.decide(store, f"o{n}", action, "auditor", None)
    (row,) = integrity.report(store, "2026-10", customer="d")
    names = {f.name for f in row.flags}
    assert {"audit_disagreement", "stale_claims"} <= names  # 2 of 4; 8 waiting since October


def test_thresholds_files_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("thresholds:\n  high_dispute: '0.3'\n")
    with pytest.raises(service.OutcomeError, match="unknown high_dispute"):
        integrity.load_thresholds(path)
    path.write_text("thresholds:\n  high_disputes: '-1'\n")
    with pytest.raises(service.OutcomeError, match="high_disputes: a finite, non-negative number"):
        integrity.load_thresholds(path)
    path.write_text("thresholds:\n  high_disputes: '0.3'\n  min_audited: 5\n")
    limits = integrity.load_thresholds(path)
    assert (str(limits.high_disputes), limits.min_audited) == ("0.3", 5)


def test_audit_disagreement_needs_enough_decided_audits() -> None:
    from payoff.core.integrity import OutcomeStats, Thresholds, flags

    one = OutcomeStats(
        claims=12, audited=12, audit_decided=1, audit_rejected=1, pending=11, tasks=12
    )
    assert "audit_disagreement" not in {f.name for f in flags(one, None, Thresholds())}


@pytest.mark.parametrize(("text", "message"), [
    ("high_disputes: .nan", "a finite, non-negative number"),
    ("audit_disagreement: '5'", "a share from 0 to 1"),
])  # fmt: skip
def test_thresholds_must_be_usable(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(f"thresholds:\n  {text}\n")
    with pytest.raises(service.OutcomeError, match=message):
        integrity.load_thresholds(path)


def _all_pages(store: Store, status: str | None, count: int) -> list[list[str]]:
    pages, offset = [], 0
    while offset is not None:
        found = service.states_page(store, None, status, offset, count)
        pages.append([state.outcome.id for state in found.states])
        offset = found.next_offset
    return pages


def test_pages_of_outcomes_by_status_give_every_match_once(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    records: list[dict[str, Any]] = []
    for n in range(7):
        at = f"2026-10-0{n + 1}T00:00:00Z"
        records += [usage(f"u{n}", f"t{n}", at), claim(f"o{n}", f"t{n}", at)]
    for n in (1, 4, 5):
        records.append(verdict(f"a{n}", f"o{n}", "reject", f"2026-10-0{n + 2}T00:00:00Z"))
    assert ingest(store, *records).clean
    monkeypatch.setattr(service, "SCAN_CLAIMS", 2)  # chunks end inside the listing
    assert _all_pages(store, "rejected", 2) == [["o1", "o4"], ["o5"]]
    verified = _all_pages(store, "verified", 3)
    assert [id for page in verified for id in page] == ["o0", "o2", "o3", "o6"]
    assert _all_pages(store, "reversed", 2) == [[]]
    assert _all_pages(store, None, 3) == [["o0", "o1", "o2"], ["o3", "o4", "o5"], ["o6"]]
