"""Outcome contracts as files: applied once and for good, listed, shown; named by plans in
place of their own verification settings; billed, printed and re-derived."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contract_support import RESOLUTION_CONTRACT, billed, ingest, invoice, ledger, plan_text
from factories import REPO, attestation, outcome, tool_usage
from payoff.catalog import Catalog
from payoff.cli import app
from payoff.contract_files import ContractError, parse_contract
from payoff.core.errors import Conflict, NotFound
from payoff.plan_files import PlanError, parse_plan
from payoff.service import contracts, invoices, outcomes, plans
from payoff.service.bundles import check_bundle_file, export_bundle
from payoff.service.verify import verify_ledger
from payoff.store import open_store

runner = CliRunner()


def usage(id: str, task: str, time: str, customer: str = "c") -> dict[str, object]:
    return tool_usage(id, task=task, time=time, customer=customer)


def claim(id: str, task: str, time: str, customer: str = "c") -> dict[str, object]:
    return outcome(id, task, customer, time=time, value=None)


def test_a_contract_is_applied_once_and_each_version_is_immutable(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.db")
    file = tmp_path / "c.yaml"
    file.write_text(RESOLUTION_CONTRACT)
    assert contracts.apply_contract(store, file)[1] is True
    assert contracts.apply_contract(store, file)[1] is False  # the same body: nothing changes
    file.write_text(RESOLUTION_CONTRACT.replace("24h", "48h"))
    different = re.escape("support.resolution@1 exists with a different body")
    with pytest.raises(Conflict, match=different):
        contracts.apply_contract(store, file)
    file.write_text(RESOLUTION_CONTRACT.replace("24h", "48h").replace("version: 1", "version: 2"))
    contracts.apply_contract(store, file)
    listed = contracts.list_contracts(store)
    assert [(c["id"], c["version"], c["rule"]) for c in listed] == [
        ("support.resolution", 1, "confirm; assume after 1d; follow-up conversation.reopened; "
                                  "warranty 30d"),
        ("support.resolution", 2, "confirm; assume after 2d; follow-up conversation.reopened; "
                                  "warranty 30d"),
    ]  # fmt: skip
    assert contracts.show_contract(store, "support.resolution")["version"] == 2
    assert contracts.show_contract(store, "support.resolution@1")["unit"] == {
        "singular": "resolution",
        "plural": "resolutions",
    }
    with pytest.raises(NotFound, match=re.escape("no contract 'support.resolution@3'")):
        contracts.show_contract(store, "support.resolution@3")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("  confirm: true\n", ""), None),  # valid without it
        (("verification:\n", "confirm: true\nverification:\n"),
         "unknown field `confirm` ('confirm' belongs under `verification:`)"),
        (("24h", "24 hours"), "verification.assume_after: a duration like 24h"),
        (("30d", "400d"), "verification.warranty: at most 365d, got 400d"),
        (("outcome: ticket.resolved", "outcome: '*'"), "outcome: the outcome type"),
        (("version: 1", "version: 0"), "version: a positive integer"),
        (("unit: {singular: resolution, plural: resolutions}", "unit: {singular: resolution}"),
         "missing required field `plural`"),
        (("warranty: 30d", "warranty: 30d\n  audit: '1.5'"),
         "verification.audit: a share from 0 to 1"),
        (("warranty: 30d", "warranty: 30d\n  judge: {command: [j], url: 'https://j.example'}"),
         "verification.judge: exactly one of command"),
        (("warranty: 30d", "warranty: 30d\n  judge: {url: 'http://j.example/v'}"),
         "verification.judge.url: an https:// address"),
        (("warranty: 30d", "warranty: 30d\n  judge: {command: [j], timeout: 10m}"),
         "verification.judge.timeout: at most 300s"),
        (("outcome:", "evidence: ['has space']\noutcome:"), "evidence: 'has space' is not a field"),
        (("outcome:", "retain_evidence: true\noutcome:"), "retain_evidence: the contract requires"),
        (("id: support.resolution", "id: a@b"), "id: a name of 1 to 255 characters without '@'"),
    ],
)  # fmt: skip
def test_a_malformed_contract_is_refused_naming_the_file_and_field(
    change: tuple[str, str], message: str | None
) -> None:
    text = RESOLUTION_CONTRACT.replace(*change)
    assert text != RESOLUTION_CONTRACT
    if message is None:
        parse_contract(text, "c.yaml")
        return
    with pytest.raises(ContractError) as refused:
        parse_contract(text, "c.yaml")
    assert str(refused.value).startswith("c.yaml: ")
    assert message in str(refused.value)


def test_a_plan_names_an_applied_contract_of_its_own_outcome_type(tmp_path: Path) -> None:
    store = open_store(tmp_path / "l.db")
    file = tmp_path / "p.yaml"
    file.write_text(plan_text("support.resolution@1"))
    with pytest.raises(PlanError, match=re.escape("contract support.resolution@1 is not applied")):
        plans.apply_plan(store, file)
    (tmp_path / "c.yaml").write_text(RESOLUTION_CONTRACT)
    contracts.apply_contract(store, tmp_path / "c.yaml")
    file.write_text(plan_text("support.resolution@1", outcome="ticket.closed"))
    mismatch = re.escape("'ticket.closed' is not the type 'ticket.resolved'")
    with pytest.raises(PlanError, match=mismatch):
        plans.apply_plan(store, file)
    file.write_text(plan_text("support.resolution@1"))
    plans.apply_plan(store, file)
    stored = plans.show_plan(store, "by-contract")["body"]["charges"][0]
    assert stored["contract"] == "support.resolution@1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("    model:", "    verification: customer\n    model:"),
         "the contract says how claims are verified; remove verification"),
        (("    contract: support.resolution@1", "    contract: support.resolution"),
         "contract: ID@VERSION of an outcome contract"),
        (("    outcome: ticket.resolved", "    outcome: '*'"), "name it, not '*'"),
        (("    type: outcome\n    outcome: ticket.resolved",
          "    type: task\n    task_type: '*'"), "contract: not a field of task charges"),
    ],
)  # fmt: skip
def test_a_plan_charge_naming_a_contract_sets_nothing_the_contract_sets(
    change: tuple[str, str], message: str
) -> None:
    text = plan_text("support.resolution@1").replace(*change)
    with pytest.raises(PlanError, match=message):
        parse_plan(text, "p.yaml")


def test_plans_without_a_contract_keep_their_bodies() -> None:
    """Their digests, and so their invoices, are the same as before contracts existed."""
    for file in sorted((REPO / "examples" / "plans").glob("*.yaml")):
        _, body = parse_plan(file.read_bytes(), str(file))
        assert all("contract" not in charge for charge in body["charges"]), file


def test_claims_are_billed_under_the_contract_rule_and_printed_in_its_unit(
    tmp_path: Path,
) -> None:
    store = ledger(tmp_path)
    report = ingest(
        store,
        *(usage(f"u{n}", f"t{n}", "2026-10-01T00:00:00Z") for n in range(1, 5)),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),  # accepted by the customer
        claim("o2", "t2", "2026-10-02T00:00:00Z"),  # deemed 24 h after: no follow-up
        claim("o3", "t3", "2026-10-02T00:00:00Z"),  # rejected
        claim("o4", "t4", "2026-10-31T12:00:00Z"),  # deemed in November
        attestation("a1", "o1", "accept", "2026-10-02T01:00:00Z"),
        attestation("a3", "o3", "reject", "2026-10-02T01:00:00Z"),
    )
    assert report.clean, report.problems
    october = invoice(store, "2026-10")
    assert billed(october) == [("2026-10", "outcomes", "2", "1.98")]
    printed = invoices.printable_document(store, october["id"])
    assert [(line.description, line.unit) for line in printed.lines] == [
        ("Verified resolutions (support.resolution@1)", "resolutions")
    ]
    november = invoice(store, "2026-11", finalize=False)
    assert billed(november) == [("2026-11", "outcomes", "1", "0.99")]
    assert invoices.printable_document(store, november["id"]).lines[0].unit == "resolution"
    listed = {s["id"]: s for s in (o.as_json() for o in outcomes.list_states(store))}
    assert listed["o2"]["verification"] == "contract"
    assert listed["o2"]["contract"] == "support.resolution@1"
    assert listed["o2"]["verified_by"] == "deemed"


def test_a_reversal_within_the_contract_warranty_is_credited_on_a_later_invoice(
    tmp_path: Path,
) -> None:
    store = ledger(tmp_path)
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-20T00:00:00Z"),
        attestation("a1", "o1", "accept", "2026-10-20T01:00:00Z"),
    )
    assert billed(invoice(store, "2026-10")) == [("2026-10", "outcomes", "1", "0.99")]
    # The customer reverses it on November 10: within the 30-day warranty.
    report = ingest(store, attestation("a2", "o1", "reverse", "2026-11-10T00:00:00Z"))
    assert report.clean
    assert billed(invoice(store, "2026-11")) == [
        ("2026-11", "outcomes", "0", "0.00"),
        ("2026-10", "outcomes", "-1", "-0.99"),
    ]
    # After the warranty, a reversal is refused with its reason.
    ingest(store, claim("o2", "t1", "2026-10-20T00:00:00Z"))
    late = ingest(store, attestation("a3", "o2", "reverse", "2026-11-25T00:00:00Z"))
    assert [p.reason for p in late.problems] == ["the 30d warranty has ended"]


def test_invoices_under_a_contract_are_verified_and_bundled(tmp_path: Path) -> None:
    store = ledger(tmp_path)
    ingest(
        store,
        usage("u1", "t1", "2026-10-01T00:00:00Z"),
        claim("o1", "t1", "2026-10-02T00:00:00Z"),
        claim("o2", "t1", "2026-10-03T00:00:00Z"),
        attestation("a1", "o1", "accept", "2026-10-02T01:00:00Z"),
    )
    october = invoice(store, "2026-10")
    result = verify_ledger(store)
    assert [str(m) for m in result.mismatches] == [] and result.invoices == 1
    exported = export_bundle(store, "c", "2026-10", tmp_path / "b.jsonl", Catalog())
    lines = [json.loads(line) for line in (tmp_path / "b.jsonl").read_text().splitlines()]
    assert [line["id"] for line in lines if line.get("table") == "contracts"] == [
        "support.resolution"
    ]
    assert check_bundle_file(exported.path).ok
    # A contract edited in the ledger after the invoice was finalized is named.
    with store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.exec_driver_sql("UPDATE contracts SET body = replace(body, '24h', '1h')")
    assert "contract support.resolution@1: body digest" in str(verify_ledger(store).mismatches)
    assert october["total"] == "1.98"


def test_the_contract_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "l.db")
    file = tmp_path / "c.yaml"
    file.write_text(RESOLUTION_CONTRACT)
    result = runner.invoke(app, ["--db", db, "contracts", "apply", str(file)])
    assert result.exit_code == 0 and "contract support.resolution@1 applied" in result.stdout
    result = runner.invoke(app, ["--db", db, "contracts", "list", "--json"])
    assert [c["id"] for c in json.loads(result.stdout)] == ["support.resolution"]
    result = runner.invoke(app, ["--db", db, "contracts", "show", "support.resolution@1"])
    assert result.exit_code == 0 and "resolution / resolutions" in result.stdout
    file.write_text(RESOLUTION_CONTRACT.replace("30d", "1000d"))
    result = runner.invoke(app, ["--db", db, "contracts", "apply", str(file)])
    assert result.exit_code != 0


def test_every_version_that_applies_can_be_named_and_no_other(tmp_path: Path) -> None:
    """Contracts and plans take versions up to 2,147,483,647; a reference names any of them."""
    store = open_store(tmp_path / "l.db")
    largest = RESOLUTION_CONTRACT.replace("version: 1", "version: 2147483647")
    contracts.apply_contract_text(store, largest, "c.yaml")
    assert contracts.show_contract(store, "support.resolution@2147483647")["version"] == 2147483647
    for reference in ("support.resolution@2147483648", "support.resolution@0", "x@1e3"):
        with pytest.raises(contracts.ContractRequestError, match="from 1 to 2,147,483,647"):
            contracts.show_contract(store, reference)
    with pytest.raises(plans.BillingError, match="from 1 to 2,147,483,647"):
        plans.find_plan(store, "hybrid@99999999999")
    store.close()
