"""Customer-verifiable bundles: one file with an invoice and what it was computed from,
re-derived offline from the file alone, byte for byte; a tampered bundle fails, naming what
differs."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ledger_support import invoiced_ledger
from payoff.cli import app
from payoff.core.canonical import canonical_json

runner = CliRunner()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return invoiced_ledger(tmp_path_factory.mktemp("bundle") / "ledger.db")


def export(ledger: Path, customer: str, period: str, output: Path) -> str:
    result = runner.invoke(
        app,
        ["--db", str(ledger), "export-bundle", "--customer", customer, "--period", period,
         "--output", str(output)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def verify_bundle(path: Path, *options: str) -> tuple[int, str]:
    result = runner.invoke(app, ["verify-bundle", str(path), *options])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("customer", "period"),
    [
        ("acme", "2026-11"),  # a subscription, a reasoning budget, tasks, a minimum
        ("initech", "2026-11"),  # outcomes priced by the unit
        ("globex", "2026-12"),  # late usage of November, at cost plus
        ("umbrella", "2026-12"),  # a reversal credited: late lines and a credit note
    ],
)
def test_a_bundle_re_derives_its_invoice_byte_for_byte(
    ledger: Path, tmp_path: Path, customer: str, period: str
) -> None:
    bundle = tmp_path / "bundle.jsonl"
    assert "wrote" in export(ledger, customer, period, bundle)
    code, output = verify_bundle(bundle)
    assert code == 0, output
    assert output.startswith("match: invoice INV-2026-")
    assert "byte for byte" in output


def test_a_bundle_is_json_lines_a_customer_reads_with_standard_tools(
    ledger: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "umbrella.jsonl"
    export(ledger, "umbrella", "2026-12", bundle)
    lines = bundle.read_text().splitlines()
    head = json.loads(lines[0])
    assert (head["bundle"], head["customer"], head["period"]) == ("payoff-bundle", "umbrella",
                                                                  "2026-12")  # fmt: skip
    documents = [json.loads(line) for line in lines[1 : 1 + head["documents"]]]
    assert [d["document"] for d in documents] == ["invoice", "credit_note"]
    rows = lines[1 + head["documents"] :]
    assert len(rows) == head["rows"]
    tables = {json.loads(line)["table"] for line in rows}
    assert {"plans", "subscriptions", "invoices", "events", "outcomes", "attestations"} <= tables
    # `tail -n +K bundle | sha256sum` is the records digest the invoice's seal holds.
    digest = "sha256:" + hashlib.sha256("".join(r + "\n" for r in rows).encode()).hexdigest()
    assert digest == head["records_digest"] == documents[0]["body"]["seal"]["records_digest"]


def _tampered(bundle: Path, table: str, change: dict[str, object], tmp_path: Path) -> Path:
    lines = bundle.read_text().splitlines()
    for index, line in enumerate(lines):
        value = json.loads(line)
        if value.get("table") == table and value.get("cost_nanousd") != 0:
            lines[index] = canonical_json({**value, **change})
            break
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_text("".join(line + "\n" for line in lines))
    return tampered


def test_a_bundle_whose_record_tokens_changed_fails_naming_what_differs(
    ledger: Path, tmp_path: Path
) -> None:
    bundle = tmp_path / "acme.jsonl"
    export(ledger, "acme", "2026-11", bundle)
    event = next(json.loads(line) for line in bundle.read_text().splitlines()
                 if '"table":"events"' in line and '"kind":"llm"' in line)  # fmt: skip
    tampered = _tampered(bundle, "events", {"input_tokens": event["input_tokens"] + 1}, tmp_path)
    code, output = verify_bundle(tampered)
    assert code == 1
    assert output.splitlines()[-1].startswith("NO MATCH")
    assert "seal.records_digest: expected sha256:" in output
    assert "header: records_digest" in output
    # The cost no longer follows from the tokens: priced again, it differs.
    assert "cost (nano-USD, visible, source)" in output
    code, output = verify_bundle(tampered, "--json")
    report = json.loads(output)
    assert code == 1 and report["ok"] is False
    assert {"seal.records_digest", "inputs_digest"} <= {m["what"] for m in report["mismatches"]}


def test_a_bundle_with_a_record_left_out_fails(ledger: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "initech.jsonl"
    export(ledger, "initech", "2026-11", bundle)
    lines = bundle.read_text().splitlines()
    # A resolved ticket's claim: what the plan's first charge, resolved-tickets, counts.
    claim = next(
        i
        for i, line in enumerate(lines)
        if '"table":"outcomes"' in line and '"type":"ticket.resolved"' in line
    )
    del lines[claim]
    short = tmp_path / "short.jsonl"
    short.write_text("".join(line + "\n" for line in lines))
    code, output = verify_bundle(short)
    assert code == 1
    assert "fees[0](resolved-tickets).units" in output
    assert "header: rows" in output


def test_a_bundle_with_a_record_given_twice_fails_saying_so(ledger: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "initech.jsonl"
    export(ledger, "initech", "2026-11", bundle)
    lines = bundle.read_text().splitlines()
    # A resolved ticket's claim: what the plan's first charge, resolved-tickets, counts.
    claim = next(
        i
        for i, line in enumerate(lines)
        if '"table":"outcomes"' in line and '"type":"ticket.resolved"' in line
    )
    lines.insert(claim, lines[claim])
    doubled = tmp_path / "doubled.jsonl"
    doubled.write_text("".join(line + "\n" for line in lines))
    code, output = verify_bundle(doubled)
    assert code == 1
    assert "1 row(s) given twice" in output


def test_a_line_that_is_not_canonical_is_refused_naming_it(ledger: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "acme.jsonl"
    export(ledger, "acme", "2026-11", bundle)
    lines = bundle.read_text().splitlines()
    lines[5] = json.dumps(json.loads(lines[5]))  # spaces after separators
    spaced = tmp_path / "spaced.jsonl"
    spaced.write_text("".join(line + "\n" for line in lines))
    result = runner.invoke(app, ["verify-bundle", str(spaced)])
    assert result.exit_code != 0
    assert "line 6: not canonical JSON" in str(result.exception or result.output)


def test_only_a_finalized_invoice_is_bundled(ledger: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["--db", str(ledger), "export-bundle", "--customer", "acme", "--period", "2027-01",
         "--output", str(tmp_path / "none.jsonl")],
    )  # fmt: skip
    assert result.exit_code != 0
    assert "no finalized invoice of 'acme' for 2027-01" in str(result.exception)
    assert not (tmp_path / "none.jsonl").exists()


@pytest.mark.slow
def test_a_customer_verifies_a_bundle_with_payoff_alone_and_no_ledger(
    ledger: Path, tmp_path: Path
) -> None:
    """`payoff verify-bundle` in another process, in a folder with no ledger, without
    PAYOFF_DB: nothing but the file and payoff."""
    bundle = tmp_path / "umbrella.jsonl"
    export(ledger, "umbrella", "2026-12", bundle)
    customer = tmp_path / "customer"
    customer.mkdir()
    shutil.move(bundle, customer / "bundle.jsonl")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYOFF_")}
    payoff = Path(sys.executable).with_name("payoff")
    done = subprocess.run(
        [str(payoff), "verify-bundle", "bundle.jsonl"],
        cwd=customer,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "byte for byte" in done.stdout
    assert sorted(p.name for p in customer.iterdir()) == ["bundle.jsonl"]  # no ledger made
