"""The store contract: idempotent writes, task ownership, references. Run on every backend."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import msgspec

from factories import NOV_3, outcome, task, usage
from payoff.service import IngestReport
from payoff.store.protocol import Store

Ingest = Callable[..., IngestReport]


def test_same_id_same_body_is_a_duplicate(ingest: Ingest, store: Store) -> None:
    assert ingest(usage("e1"), usage("e2")).counts() == {
        "accepted": 2,
        "duplicates": 0,
        "conflicts": 0,
        "rejected": 0,
    }
    assert ingest(usage("e1"), usage("e2")).counts() == {
        "accepted": 0,
        "duplicates": 2,
        "conflicts": 0,
        "rejected": 0,
    }
    assert store.counts().events == 2


def test_same_id_other_body_is_a_conflict_and_the_stored_one_stays(
    ingest: Ingest, store: Store
) -> None:
    ingest(usage("e1", task="t1"))
    report = ingest(usage("e1", task="t1", output_tokens=301), usage("e3", task="t1"))
    assert report.counts() == {"accepted": 1, "duplicates": 0, "conflicts": 1, "rejected": 0}
    assert report.problems[0].id == "e1" and report.problems[0].status == "conflict"
    (summary,) = store.tasks()
    assert summary.steps == 2 and summary.tokens_total == 2 * 1500


def test_repeats_inside_one_batch(ingest: Ingest, store: Store) -> None:
    report = ingest(usage("e1"), usage("e1"), usage("e1", output_tokens=5), usage("e2"))
    assert report.counts() == {"accepted": 2, "duplicates": 1, "conflicts": 1, "rejected": 0}
    assert store.counts().events == 2


def test_repeats_inside_one_batch_of_an_already_stored_conflict(ingest: Ingest) -> None:
    ingest(usage("e1"))
    report = ingest(usage("e1", output_tokens=5), usage("e1", output_tokens=5), usage("e1"))
    assert report.counts() == {"accepted": 0, "duplicates": 1, "conflicts": 2, "rejected": 0}


def test_a_task_belongs_to_one_customer(ingest: Ingest, store: Store) -> None:
    report = ingest(usage("e1", task="t1"), usage("e2", task="t1", customer="globex"))
    assert report.counts()["rejected"] == 1
    assert "belongs to another customer" in report.problems[0].reason
    report = ingest(task("t1", "completed", customer="globex"), outcome("o1", "t1", "globex"))
    assert report.counts()["rejected"] == 2
    assert [t.customer for t in store.tasks()] == ["acme"]


def test_a_refused_record_does_not_decide_whose_a_new_task_is(ingest: Ingest, store: Store) -> None:
    ingest(usage("e1"))
    # The conflicting line names a task nobody has: it brings no task into being, so the
    # valid line after it may, for its own customer.
    report = ingest(usage("e1", task="t1", customer="globex"), usage("e2", task="t1"))
    assert report.counts() == {"accepted": 1, "duplicates": 0, "conflicts": 1, "rejected": 0}
    assert [(t.id, t.customer) for t in store.tasks()] == [("t1", "acme")]


def test_task_status_latest_wins_and_terminal_beats_open_at_the_same_instant(
    ingest: Ingest, store: Store
) -> None:
    ingest(usage("e1", task="t1", task_type="support.ticket"))
    assert store.tasks()[0].status == "open" and store.tasks()[0].type == "support.ticket"
    ingest(
        task("t1", "completed", "2026-11-03T10:05:00Z"), task("t1", "open", "2026-11-03T10:01:00Z")
    )
    assert store.tasks()[0].status == "completed"
    ingest(task("t1", "failed", "2026-11-03T10:09:00Z"))
    assert store.tasks()[0].status == "failed"
    ingest(task("t2", "open"), task("t2", "abandoned"))
    assert {t.id: t.status for t in store.tasks()}["t2"] == "abandoned"


def test_task_record_key_is_id_and_status(ingest: Ingest) -> None:
    ingest(task("t1", "completed"))
    again = ingest(task("t1", "completed"), task("t1", "completed", "2026-11-04T00:00:00Z"))
    assert again.counts() == {"accepted": 0, "duplicates": 1, "conflicts": 1, "rejected": 0}


def test_outcome_needs_its_task_and_attestation_needs_its_outcome(
    ingest: Ingest, store: Store
) -> None:
    typo = ingest(outcome("o0", "t-typo"))
    assert typo.counts()["rejected"] == 1
    assert (typo.problems[0].reason, typo.problems[0].field) == ("unknown task `t-typo`", "task")
    assert store.counts().tasks == 0
    attest = {
        "record": "attestation",
        "id": "a1",
        "outcome": "o1",
        "verdict": "accept",
        "time": NOV_3,
    }
    orphan = dict(attest, id="a2", outcome="o-missing")
    report = ingest(usage("e1", task="t9"), outcome("o1", "t9"), attest, orphan)
    assert report.counts() == {"accepted": 3, "duplicates": 0, "conflicts": 0, "rejected": 1}
    assert report.problems[0].reason == "unknown outcome `o-missing`"
    assert report.problems[0].field == "outcome"
    counts = store.counts()
    assert (counts.tasks, counts.outcomes, counts.attestations) == (1, 1, 1)
    assert ingest(outcome("o1", "t9"), attest).counts()["duplicates"] == 2


def test_customers_come_into_being_with_their_records(ingest: Ingest, store: Store) -> None:
    ingest(usage("e1"), usage("e2", customer="globex"), task("t5", "open", customer="initech"))
    assert store.counts().customers == 3


def test_a_refused_record_changes_nothing_else(ingest: Ingest, store: Store) -> None:
    ingest(usage("e1", task="t1"))
    # A conflict naming a new task and a foreign customer's claim on t1: both refused.
    report = ingest(
        usage("e1", task="t2", customer="globex"), usage("e2", task="t1", customer="initech")
    )
    assert report.counts() == {"accepted": 0, "duplicates": 0, "conflicts": 1, "rejected": 1}
    counts = store.counts()
    assert (counts.customers, counts.tasks, counts.events) == (1, 1, 1)


def test_same_content_in_other_formatting_is_a_duplicate(ingest: Ingest) -> None:
    compact = (
        b'{"id":"e1","time":"2026-11-03T10:00:00Z","customer":"acme",'
        b'"provider":"openai","model":"gpt-4o","input_tokens":1,"output_tokens":2}'
    )
    spaced = (
        b'{ "output_tokens": 2, "input_tokens": 1, "model": "gpt-4o", "provider": "openai",'
        b' "customer": "acme", "time": "2026-11-03T11:00:00+01:00", "id": "e1",'
        b' "record": "usage" }'
    )
    changed = compact.replace(b'"task_type"', b"").replace(
        b'"output_tokens":2', b'"output_tokens":2,"task_type":"x"'
    )
    assert ingest(compact).counts()["accepted"] == 1
    assert ingest(spaced).counts()["duplicates"] == 1
    assert ingest(changed).counts()["conflicts"] == 1


def test_derived_columns_are_not_content(store: Store, tmp_path: Any) -> None:
    # The same records re-sent after a price override costs them differently: duplicates.
    from payoff.catalog import Catalog, Override
    from payoff.service import ingest_lines

    records = [usage("e1"), usage("e2", provider="self-hosted", model="llama-x")]
    lines = list(enumerate((msgspec.json.encode(r) for r in records), start=1))
    assert ingest_lines(store, lines).counts()["accepted"] == 2
    override = Override(
        provider="self-hosted", model="llama-x", input_mtok=Decimal("1"), output_mtok=Decimal("2")
    )
    again = ingest_lines(store, lines, catalog=Catalog([override]))
    assert again.counts() == {"accepted": 0, "duplicates": 2, "conflicts": 0, "rejected": 0}


def test_attribute_order_is_not_content(ingest: Ingest) -> None:
    ingest(usage("e1", attributes={"a": "1", "b": "2"}))
    assert ingest(usage("e1", attributes={"b": "2", "a": "1"})).counts()["duplicates"] == 1
    assert ingest(usage("e1", attributes={"b": "3", "a": "1"})).counts()["conflicts"] == 1


def test_an_explicit_cost_is_content(ingest: Ingest) -> None:
    tool = {"id": "e1", "time": NOV_3, "customer": "acme", "kind": "tool", "cost": "0.004"}
    ingest(tool)
    assert ingest(dict(tool, cost="0.0040")).counts()["duplicates"] == 1
    report = ingest(dict(tool, cost="0.005"))
    assert report.counts()["conflicts"] == 1
    assert report.problems[0].field == "cost"
