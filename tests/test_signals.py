"""Signals: a record kind from the customer's systems, accepted by file, HTTP and the SDK,
idempotent like every record; follow-ups hold or reverse outcomes under a contract, and
activity keeps a contract with `inactivity` from deciding."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
from fastapi.testclient import TestClient

import payoff
from contract_support import RESOLUTION_CONTRACT, billed, ingest, invoice, ledger
from factories import attestation, jsonl, outcome, signal, tool_usage
from payoff.api import ServerConfig, create_app
from payoff.catalog import Catalog
from payoff.service import access, integrity, invoices, outcomes
from payoff.service.bundles import check_bundle_file, export_bundle
from payoff.service.verify import verify_ledger
from payoff.store import open_store
from payoff.store.protocol import Store


def usage(id: str, task: str, time: str, customer: str = "c") -> dict[str, object]:
    return tool_usage(id, task=task, time=time, customer=customer)


def claim(id: str, task: str, time: str) -> dict[str, object]:
    return outcome(id, task, "c", time=time, value=None)


def reopened(id: str, time: str, **about: str) -> dict[str, object]:
    return signal(id, "conversation.reopened", time, **about)


def status(store: Store, outcome_id: str) -> tuple[str, list[tuple[str, str]]]:
    (state,) = [s for s in outcomes.list_states(store) if s.outcome.id == outcome_id]
    return state.lifecycle.status, [(s.status, s.by) for s in state.lifecycle.steps]


def test_signals_are_stored_once_each_and_each_bad_one_is_named(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.db")
    records = [
        usage("u1", "t1", "2026-11-01T00:00:00Z"),
        usage("u2", "t2", "2026-11-01T00:00:00Z"),
        claim("o1", "t1", "2026-11-02T00:00:00Z"),
        reopened("s1", "2026-11-02T01:00:00Z", outcome="o1"),  # an outcome of this batch
        reopened("s2", "2026-11-02T01:00:00Z", task="t1", attributes={"by": "x", "a": "1"}),
        reopened("s3", "2026-11-02T01:00:00Z", task="t1", outcome="o1"),
        reopened("s4", "2026-11-02T01:00:00Z", task="t2", outcome="o1"),  # o1 is t1's
        reopened("s5", "2026-11-02T01:00:00Z", task="nope"),
        reopened("s6", "2026-11-02T01:00:00Z", outcome="nope"),
        reopened("s7", "2026-11-02T01:00:00Z"),  # about nothing
        reopened("s1", "2026-11-02T01:00:00Z", outcome="o1"),  # the same: a duplicate
        reopened("s2", "2026-11-02T02:00:00Z", task="t1"),  # another body: a conflict
    ]
    report = ingest(store, *records)
    assert (report.accepted, report.duplicates, report.conflicts, report.rejected) == (6, 1, 1, 4)
    assert [(p.line, p.field, p.reason) for p in report.problems] == [
        (7, "task", "outcome `o1` is a claim of task `t1`"),
        (8, "task", "unknown task `nope`"),
        (9, "outcome", "unknown outcome `nope`"),
        (10, "task", "a signal names a task, an outcome, or both"),
        (12, "time", "the same id was stored earlier with another `time`"),
    ]
    again = ingest(store, *records[3:6])
    assert (again.accepted, again.duplicates) == (0, 3)
    found = store.signals_about(["t1", "t2"])
    assert [(g.id, g.about_task, g.outcome) for g in found["t1"]] == [
        ("s1", "t1", "o1"),
        ("s2", "t1", None),
        ("s3", "t1", "o1"),
    ]
    assert "t2" not in found


def test_a_follow_up_before_acceptance_holds_it(tmp_path: Path) -> None:
    store = ledger(tmp_path)
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        usage("u2", "t2", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        claim("o2", "t2", "2026-10-02T00:00:00Z"),
        reopened("s1", "2026-10-02T05:00:00Z", task="t1"),  # the customer asked for more help
    )
    # o2 is assumed 24 h after its claim; o1 is held and never assumed.
    assert billed(invoice(store, "2026-10")) == [("2026-10", "outcomes", "1", "0.99")]
    assert status(store, "o1") == ("claimed", [("claimed", "rule"), ("held", "signal")])
    # A held claim is still the customer's to confirm, and is billed when confirmed.
    assert ingest(store, attestation("a1", "o1", "accept", "2026-11-03T00:00:00Z")).clean
    assert billed(invoice(store, "2026-11", finalize=False)) == [
        ("2026-11", "outcomes", "1", "0.99")
    ]


def test_a_follow_up_after_acceptance_is_credited_in_a_later_period(tmp_path: Path) -> None:
    store = ledger(tmp_path)
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-28T00:00:00Z"),
        claim("o2", "t1", "2026-10-28T00:00:00Z"),
    )
    october = invoice(store, "2026-10")
    assert billed(october) == [("2026-10", "outcomes", "2", "1.98")]
    # The customer comes back about o1 in November, within the 30-day warranty.
    assert ingest(store, reopened("s1", "2026-11-05T00:00:00Z", outcome="o1")).clean
    november = invoice(store, "2026-11")
    assert billed(november) == [
        ("2026-11", "outcomes", "0", "0.00"),
        ("2026-10", "outcomes", "-1", "-0.99"),
    ]
    (note,) = store.credit_notes(invoice=october["id"])
    assert note.applied_on == november["id"]
    assert status(store, "o1")[1][-1] == ("reversed", "signal")
    # Both invoices re-derive from their rows, the signal among them, and so does a bundle.
    result = verify_ledger(store)
    assert [str(m) for m in result.mismatches] == [] and result.invoices == 2
    exported = export_bundle(store, "c", "2026-11", tmp_path / "b.jsonl", Catalog())
    lines = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines if line.get("table") == "signals"] == ["s1"]
    assert check_bundle_file(exported.path).ok
    # A signal deleted after the invoice was finalized is named.
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("DELETE FROM signals")
    assert "records_digest" in str(verify_ledger(store).mismatches)


INACTIVE_72H = RESOLUTION_CONTRACT.replace(
    "  confirm: true\n  assume_after: 24h\n", "  inactivity: 72h\n"
)


def test_inactivity_waits_until_the_task_has_been_quiet(tmp_path: Path) -> None:
    store = ledger(tmp_path, INACTIVE_72H)
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        usage("u2", "t2", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-26T00:00:00Z"),  # quiet: verified October 29
        claim("o2", "t2", "2026-10-26T12:00:00Z"),
        signal("m1", "message.received", "2026-10-29T00:00:00Z", task="t2"),  # 60 h after
    )
    assert billed(invoice(store, "2026-10")) == [("2026-10", "outcomes", "1", "0.99")]
    # t2 went quiet from October 29: o2 is verified 72 h later, on November 1.
    assert billed(invoice(store, "2026-11", finalize=False)) == [
        ("2026-11", "outcomes", "1", "0.99")
    ]
    (at,) = [s for s in outcomes.list_states(store) if s.outcome.id == "o2"]
    assert at.as_json()["verified_at"] == "2026-11-01T00:00:00Z"


def test_signals_arrive_over_http_and_from_the_sdk(tmp_path: Path) -> None:
    store = ledger(tmp_path)
    ingest(store, usage("u1", "t1", "2026-10-01T00:00:00Z"))
    _, key = access.create_key(store, "ingest")
    store.close()
    body = jsonl(reopened("h1", "2026-10-02T00:00:00Z", task="t1"), reopened("h2", "x", task="t1"))
    config = ServerConfig(str(tmp_path / "l.db"), builders=0)
    with TestClient(create_app(config)) as client:
        answer = client.post("/v1/events", content=body, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["statuses"] == ["accepted", "rejected"]
    assert answer.json()["problems"][0]["field"] == "time"
    meter = payoff.Meter(tmp_path / "l.db")
    with meter.task(customer="c", type="support") as task:
        task.tool("kb", cost="0.001")
        claimed = task.outcome("ticket.resolved")
        task.signal("conversation.reopened", outcome=claimed, attributes={"channel": "chat"})
    sent = meter.signal("message.received", task=task.id)
    meter.close()
    store = open_store(tmp_path / "l.db")
    found = store.signals_about(["t1", task.id])
    assert [g.id for g in found["t1"]] == ["h1"]
    assert [(g.name, g.outcome) for g in found[task.id]] == [
        ("conversation.reopened", claimed),
        ("message.received", None),
    ]
    assert found[task.id][1].id == sent
    assert msgspec.json.decode(
        store.engine.connect()
        .exec_driver_sql(  # type: ignore[attr-defined]
            "SELECT attributes FROM signals WHERE outcome IS NOT NULL"
        )
        .scalar_one()
    ) == {"channel": "chat"}
    assert invoices  # the module's billing helpers are used above


def test_a_held_claim_is_stale_in_the_integrity_report(tmp_path: Path) -> None:
    """A held claim waits for a verdict, however the contract deems the others."""
    store = ledger(tmp_path)
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        reopened("s1", "2026-10-02T05:00:00Z", task="t1"),
    )
    (row,) = integrity.report(store, "2026-10")
    assert row.stats.stale == 1 and "stale_claims" in [f.name for f in row.flags]
