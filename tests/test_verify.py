"""`payoff verify`: a clean ledger proves every document it issued; each way of editing the
ledger behind its back is named (document, what differs, expected as issued, found as the
ledger gives it now)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ledger_support import finalize_all, ingest, invoiced_ledger, sql
from payoff.cli import app
from payoff.service import plans
from payoff.service.verify import Verification, verify_ledger
from payoff.store import open_store

runner = CliRunner()


def execute(path: Path, query: str, *args: Any) -> None:
    with sqlite3.connect(path) as conn:
        assert conn.execute(query, args).rowcount >= 1, query


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return invoiced_ledger(tmp_path_factory.mktemp("verify") / "ledger.db")


@pytest.fixture
def ledger(template: Path, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ledger.db"
    shutil.copy(template, path)
    yield path


def verify(path: Path, **filters: str) -> Verification:
    store = open_store(path, create=False)
    try:
        return verify_ledger(store, **filters)
    finally:
        store.close()


def found(result: Verification) -> list[str]:
    return [str(m) for m in result.mismatches]


def test_a_clean_ledger_verifies_late_lines_and_credit_notes_included(ledger: Path) -> None:
    result = verify(ledger)
    assert found(result) == [] and result.integrity == [] and result.not_rederived == []
    assert (result.invoices, result.credit_notes, result.chained) == (8, 1, 9)
    # December re-derives its late lines: late usage of two customers, a credit of one.
    late = sql(ledger, "SELECT count(*) FROM invoices WHERE document LIKE '%late_period%'")
    assert late == (3,)
    assert result.rows > 9000
    cli = runner.invoke(app, ["--db", str(ledger), "verify"])
    assert cli.exit_code == 0, cli.output
    assert "8 invoices and 1 credit note re-derived" in cli.output


def test_verify_can_be_narrowed_to_a_period_and_a_customer(ledger: Path) -> None:
    result = verify(ledger, period="2026-12", customer="umbrella")
    assert found(result) == []
    assert (result.invoices, result.credit_notes, result.chained) == (1, 1, 9)
    assert verify(ledger, customer="acme").invoices == 2


def _number(path: Path, invoice_id: str) -> str:
    return f"{sql(path, 'SELECT number FROM invoices WHERE id = ?', invoice_id)[0]} ({invoice_id})"


def test_a_total_edited_in_the_total_column_is_named(ledger: Path) -> None:
    execute(ledger, "UPDATE invoices SET total = '0.01' WHERE id = 'acme-2026-11'")
    (total,) = sql(ledger, "SELECT json_extract(document, '$.total') FROM invoices WHERE id = ?",
                   "acme-2026-11")  # fmt: skip
    assert found(verify(ledger)) == [
        f"{_number(ledger, 'acme-2026-11')}: total column: expected {total}, found 0.01"
    ]


def test_a_finalized_document_edited_to_another_total_is_named(ledger: Path) -> None:
    (text,) = sql(ledger, "SELECT document FROM invoices WHERE id = 'globex-2026-11'")
    document = json.loads(text)
    line = document["fees"][0]
    real = line["amount"]
    # A consistent forgery: the line, the subtotal, the total and the column all agree.
    for key in ("amount", "precise_amount"):
        line[key] = "1.00"
    for key in ("subtotal", "total"):
        document[key] = "1.00"
    forged = json.dumps(document, sort_keys=True, separators=(",", ":"))
    execute(ledger, "UPDATE invoices SET document = ?, total = '1.00' WHERE id = 'globex-2026-11'",
            forged)  # fmt: skip
    mismatches = found(verify(ledger))
    label = _number(ledger, "globex-2026-11")
    assert f"{label}: total: expected 1.00, found {real}" in mismatches
    assert f"{label}: fees[0](usage).amount: expected 1.00, found {real}" in mismatches
    assert any(m.startswith(f"chain entry 2 ({label}): document digest") for m in mismatches)


def test_a_document_that_no_longer_adds_up_is_named_not_a_crash(ledger: Path) -> None:
    execute(ledger, "UPDATE invoices SET document = replace(document, '\"total\":',"
            " '\"total\":\"9') WHERE id = 'initech-2026-11'")  # fmt: skip
    mismatches = found(verify(ledger))
    assert any("(initech-2026-11): document: expected one that holds together" in m
               for m in mismatches)  # fmt: skip


def test_an_event_whose_tokens_or_cost_changed_after_invoicing_is_named(ledger: Path) -> None:
    execute(ledger, "UPDATE events SET cost_nanousd = cost_nanousd + 1000000000 WHERE id ="
            " (SELECT id FROM events WHERE customer = 'globex' AND cost_nanousd IS NOT NULL"
            " ORDER BY occurred_at_us LIMIT 1)")  # fmt: skip
    execute(
        ledger,
        "UPDATE events SET output_tokens = output_tokens + 1 WHERE id ="
        " (SELECT id FROM events WHERE customer = 'acme' ORDER BY occurred_at_us LIMIT 1)",
    )
    mismatches = found(verify(ledger))
    globex, acme = _number(ledger, "globex-2026-11"), _number(ledger, "acme-2026-11")
    assert any(m.startswith(f"{globex}: total: expected") for m in mismatches)
    for label in (globex, acme):
        assert any(m.startswith(f"{label}: inputs_digest: expected sha256:") for m in mismatches)
        assert any(m.startswith(f"{label}: seal.records_digest: expected") for m in mismatches)
    # December re-rated November for late lines as of its own time: it names the change too.
    assert any(m.startswith(f"{_number(ledger, 'globex-2026-12')}: ") for m in mismatches)


def test_a_deleted_outcome_or_verdict_is_named(ledger: Path) -> None:
    execute(ledger, "DELETE FROM outcomes WHERE id = (SELECT id FROM outcomes WHERE"
            " customer = 'initech' ORDER BY occurred_at_us LIMIT 1)")  # fmt: skip
    execute(ledger, "DELETE FROM attestations WHERE id = (SELECT a.id FROM attestations a"
            " JOIN outcomes o ON o.id = a.outcome WHERE o.customer = 'umbrella'"
            " AND a.verdict = 'accept' ORDER BY a.occurred_at_us DESC LIMIT 1)")  # fmt: skip
    mismatches = found(verify(ledger))
    for invoice in ("initech-2026-11", "umbrella-2026-11"):
        label = _number(ledger, invoice)
        assert any(m.startswith(f"{label}: fees[") and ".units" in m for m in mismatches), (
            invoice,
            mismatches,
        )
        assert any(m.startswith(f"{label}: seal.records_digest") for m in mismatches)


def test_a_removed_invoice_is_named_in_the_chain(ledger: Path) -> None:
    december = _number(ledger, "acme-2026-12")
    execute(ledger, "DELETE FROM invoices WHERE id = 'acme-2026-11'")
    mismatches = found(verify(ledger))
    assert "chain entry 1 (invoice acme-2026-11): document: expected stored, found missing: " \
           "removed" in mismatches  # fmt: skip
    # December's late lines were computed against it: they cannot be re-derived without it.
    assert any(m.startswith(f"{december}: re-derivation") for m in mismatches)


def test_an_invoice_removed_with_its_chain_entry_is_named(ledger: Path) -> None:
    (seq, digest) = sql(ledger, "SELECT seq, digest FROM document_chain WHERE document = ?",
                        "globex-2026-11")  # fmt: skip
    execute(ledger, "DELETE FROM invoices WHERE id = 'globex-2026-11'")
    execute(ledger, "DELETE FROM document_chain WHERE seq = ?", seq)
    mismatches = found(verify(ledger, customer="acme"))
    after = sql(ledger, "SELECT document FROM document_chain WHERE seq = ?", seq + 1)[0]
    assert any(m.startswith(f"chain entry {seq + 1} (") and f"place: expected {seq}" in m
               for m in mismatches)  # fmt: skip
    assert any(f"({after})): seal.previous: expected" in m and m.endswith(digest)
               for m in mismatches)  # fmt: skip


def test_verify_exits_non_zero_naming_each_mismatch(ledger: Path) -> None:
    execute(ledger, "UPDATE invoices SET total = '0.01' WHERE id = 'acme-2026-11'")
    cli = runner.invoke(app, ["--db", str(ledger), "verify"])
    assert cli.exit_code == 1
    assert "total column: expected" in cli.output
    cli = runner.invoke(app, ["--db", str(ledger), "verify", "--json"])
    report = json.loads(cli.stdout)
    assert cli.exit_code == 1 and report["ok"] is False
    assert report["mismatches"][0]["what"] == "total column"


PLAN_A = """id: a
version: 1
currency: USD
charges:
  - {name: platform, type: subscription, amount: "100.00"}
  - {name: tasks, type: task, task_type: "*", count: all, model: per_unit, unit_price: "1.00"}
  - {name: tickets, type: outcome, outcome: ticket.resolved, model: per_unit, unit_price: "5.00",
     verification: audit, audit_rate: "1", warranty_days: 30}
"""
PLAN_B = """id: b
version: 1
currency: USD
minimum: "250.00"
maximum: "10000.00"
charges:
  - {name: platform, type: subscription, amount: "200.00"}
  - {name: reasoning, type: tokens, classes: [output], model: per_unit, unit_price: "0.01",
     per: 1000, hidden_tokens_per_task_max: 1000}
  - {name: done, type: task, task_type: support, model: per_unit, unit_price: "2.00"}
  - {name: tickets, type: outcome, outcome: ticket.resolved, model: per_unit, unit_price: "7.00",
     verification: customer, accept_after_days: 7, warranty_days: 30}
"""


def _step(id: str, task: str, time: str, **tokens: int) -> dict[str, Any]:
    return {"id": id, "time": time, "customer": "c", "task": task, "task_type": "support",
            "provider": "openai", "model": "o3", "input_tokens": tokens.get("input", 500),
            "output_tokens": tokens.get("output", 100),
            "reasoning_tokens": tokens.get("reasoning", 0)}  # fmt: skip


def _status(task: str, status: str, time: str) -> dict[str, Any]:
    return {"record": "task", "id": task, "customer": "c", "status": status, "time": time}


def _claim(id: str, task: str, time: str) -> dict[str, Any]:
    return {"record": "outcome", "id": id, "task": task, "customer": "c",
            "type": "ticket.resolved", "time": time}  # fmt: skip


def _verdict(id: str, outcome: str, verdict: str, time: str) -> dict[str, Any]:
    return {"record": "attestation", "id": id, "outcome": outcome, "verdict": verdict,
            "time": time}  # fmt: skip


def test_what_an_invoice_run_rates_the_twin_re_derives(tmp_path: Path) -> None:
    """Two plans in one month (two windows), a reasoning budget, tasks ending in the next
    month and open ones, claims verified by audit, by the customer, rejected and deemed,
    then late usage and a reversal credited: three months finalized, each re-derived."""
    from payoff.service import outcomes

    store = open_store(tmp_path / "ledger.db")
    for name, body in (("a", PLAN_A), ("b", PLAN_B)):
        (tmp_path / f"{name}.yaml").write_text(body)
        plans.apply_plan(store, tmp_path / f"{name}.yaml")
    plans.subscribe(store, "c", "a", dt.date(2026, 10, 1))
    plans.subscribe(store, "c", "b", dt.date(2026, 11, 16))
    ingest(store, [
        _step("e0", "t0", "2026-10-02T00:00:00Z"),
        _status("t0", "completed", "2026-10-20T00:00:00Z"),
        _claim("o0", "t0", "2026-10-21T00:00:00Z"),
        _step("e1", "t1", "2026-11-03T00:00:00Z", output=5000, reasoning=4000),
        _step("e2", "t1", "2026-11-17T00:00:00Z", output=3000, reasoning=2500),
        _status("t1", "completed", "2026-12-01T00:00:00Z"),
        _step("e3", "t2", "2026-11-20T00:00:00Z"), _status("t2", "open", "2026-11-20T00:00:00Z"),
        _step("e4", "t3", "2026-11-10T00:00:00Z"),
        _status("t3", "completed", "2026-11-18T00:00:00Z"),
        _claim("o1", "t3", "2026-11-27T00:00:00Z"), _claim("o2", "t3", "2026-11-17T00:00:00Z"),
        _claim("o3", "t3", "2026-11-17T00:00:00Z"),
        _verdict("v2", "o2", "accept", "2026-11-18T00:00:00Z"),
        _verdict("v3", "o3", "reject", "2026-11-19T00:00:00Z"),
    ])  # fmt: skip
    finalize_all(store, "2026-10")
    (november,) = finalize_all(store, "2026-11")
    assert [w["plan"] for w in november["windows"]] == ["a@1", "b@1"]
    outcomes.decide(store, "o0", "verify", "auditor", None)
    ingest(store, [
        _step("late", "t4", "2026-11-25T00:00:00Z", output=9000, reasoning=8000),
        _verdict("r2", "o2", "reverse", "2026-11-30T00:00:00Z"),
    ])  # fmt: skip
    (december,) = finalize_all(store, "2026-12")
    assert {f.get("late_period") for f in december["fees"]} == {None, "2026-11"}
    assert december["rerated"][0]["billed"] == ["c-2026-11"]
    result = verify_ledger(store)
    store.close()
    assert found(result) == []
    assert (result.invoices, result.credit_notes, result.not_rederived) == (3, 1, [])
