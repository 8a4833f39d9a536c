"""Signals: a record kind from the customer's systems, accepted by file, HTTP and the SDK,
idempotent like every record; follow-ups hold or reverse outcomes under a contract, and
activity keeps a contract with `inactivity` from deciding."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import msgspec
import pytest
from fastapi.testclient import TestClient

import payoff
from api_support import live_server
from contract_support import RESOLUTION_CONTRACT, billed, ingest, invoice, ledger
from factories import attestation, jsonl, outcome, signal, tool_usage
from payoff.api import ServerConfig, create_app
from payoff.catalog import Catalog
from payoff.service import access, integrity, invoices, outcomes, tasks
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


@pytest.mark.slow
def test_a_customer_key_sends_signals_about_its_own_tasks_only(tmp_path: Path) -> None:
    """Through a real server on loopback: a customer's systems send follow-ups with the
    customer's key; another customer's task or outcome, or any other record, is refused
    (403, naming why) and nothing of the request is written."""
    store = ledger(tmp_path)
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        usage("u2", "t2", "2026-10-01T00:00:00Z", customer="other"),
        outcome("o2", "t2", "other", time="2026-10-02T00:00:00Z", value=None),
    )
    _, own_key = access.create_key(store, "customer:c")
    store.close()
    with live_server(tmp_path / "l.db", tmp_path / "server.log") as server:

        def send(*records: dict[str, object]) -> httpx.Response:
            return httpx.post(
                f"{server.url}/v1/events", content=jsonl(*records), timeout=30,
                headers={"Authorization": f"Bearer {own_key}"},
            )  # fmt: skip

        answer = send(reopened("g1", "2026-10-03T00:00:00Z", task="t1"),
                      reopened("g2", "2026-10-03T00:00:00Z", outcome="o1"))  # fmt: skip
        assert answer.status_code == 200, answer.text
        assert answer.json()["statuses"] == ["accepted", "accepted"]
        refused = send(reopened("g3", "2026-10-03T00:00:00Z", task="t1"),
                       reopened("g4", "2026-10-03T00:00:00Z", task="t2"))  # fmt: skip
        assert refused.status_code == 403, refused.text
        assert "signal 'g4' is about task 't2', which is not customer 'c'" in refused.text
        refused = send(reopened("g5", "2026-10-03T00:00:00Z", outcome="o2"))
        assert refused.status_code == 403, refused.text
        assert "about outcome 'o2', which is not customer 'c'" in refused.text
        refused = send(usage("u3", "t1", "2026-10-03T00:00:00Z"))
        assert refused.status_code == 403, refused.text
        assert "a customer key may only send signals" in refused.text
    store = open_store(tmp_path / "l.db")
    found = store.signals_about(["t1", "t2"])
    assert [g.id for g in found["t1"]] == ["g1", "g2"] and "t2" not in found
    assert tasks.ledger_counts(store).events == 2  # u3 was not written


def test_the_customers_of_tasks_and_outcomes(store: Store) -> None:
    """Tasks and outcomes are looked up apart: an outcome may share its id with a task."""
    assert ingest(
        store,
        usage("u1", "x", "2026-10-01T00:00:00Z", customer="a"),
        usage("u2", "y", "2026-10-01T00:00:00Z", customer="b"),
        outcome("x", "y", "b", time="2026-10-02T00:00:00Z", value=None),
    ).clean
    assert store.customers_of_subjects(["x", "y", "z"], ["x", "w"]) == (
        {"x": "a", "y": "b"},
        {"x": "b"},
    )
