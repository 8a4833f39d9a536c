"""Charge filters: patterns, overlap refused at validation, and rating by provider, model and
task type from the rollups, with unbilled usage reported by the invoice run."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from factories import usage
from payoff.cli import app
from payoff.core.filters import ChargeFilter, filters_disjoint, patterns_disjoint
from payoff.plan_files import PlanError, parse_plan
from payoff.service import invoices, plans
from payoff.store.protocol import Store

runner = CliRunner()


@pytest.mark.parametrize(
    ("one", "other", "disjoint"),
    [
        ("gpt-5", "gpt-5", False),
        ("gpt-5", "gpt-4o", True),
        ("gpt-5*", "gpt-5-mini", False),  # a literal against a glob: decided exactly
        ("gpt-5-mini", "gpt-5*", False),
        ("gpt-5*", "gpt-4*", True),  # fixed heads that differ
        ("*-mini", "*-nano", True),  # fixed tails that differ
        ("gpt-5*", "*-mini", False),  # gpt-5-mini matches both
        ("gpt-5*", "gpt-5.1*", False),  # one head extends the other
        ("a*a", "a", True),  # a literal is decided exactly, not by its ends
        ("a*b*c", "a*d", True),
        ("*", "anything", False),
        ("*", "*x", False),
        ("a*b", "ab", False),  # `*` matches the empty run
        ("gpt-[5]", "gpt-5", True),  # only `*` is special: brackets are text
        ("x*y", "x*y*z", True),  # tails `y` and `z` differ; no text ends with both
    ],
)
def test_patterns_are_disjoint_only_when_proved(one: str, other: str, disjoint: bool) -> None:
    assert patterns_disjoint(one, other) is disjoint
    assert patterns_disjoint(other, one) is disjoint


def test_filters_are_disjoint_when_one_field_is() -> None:
    gpt5 = ChargeFilter(model="gpt-5*")
    assert not filters_disjoint(gpt5, ChargeFilter(provider="openai"))  # fields apart: overlap
    assert filters_disjoint(gpt5, ChargeFilter(provider="openai", model="o3"))
    assert not filters_disjoint(gpt5, None)  # an unfiltered charge counts every record
    assert ChargeFilter(task_type="*").matches("openai", "gpt-5", "support", False)
    assert not ChargeFilter(task_type="*").matches("openai", "gpt-5", None, False)
    batch, online = (
        ChargeFilter(model="gpt-5*", batch=True),
        ChargeFilter(model="gpt-5*", batch=False),
    )
    assert filters_disjoint(batch, online)
    assert not filters_disjoint(batch, ChargeFilter(model="gpt-5"))  # online gpt-5 or batch
    assert batch.matches("openai", "gpt-5", None, True)
    assert not batch.matches("openai", "gpt-5", None, False)


def _plan(*charges: str) -> str:
    return "id: p\nversion: 1\ncurrency: USD\ncharges:\n" + "".join(charges)


def _tokens(name: str, filters: str | None, classes: str = "[input, output]") -> str:
    text = f"  - name: {name}\n    type: tokens\n    classes: {classes}\n"
    text += "    model: per_unit\n    unit_price: '2'\n    per: 1000000\n"
    return text + (f"    filters: {filters}\n" if filters else "")


def test_overlapping_filters_are_refused_naming_both_charges() -> None:
    with pytest.raises(PlanError) as refused:
        gpt5, mini = _tokens("gpt5", "{model: 'gpt-5*'}"), _tokens("mini", "{model: '*-mini'}")
        parse_plan(_plan(gpt5, mini))
    assert "charges 'gpt5' and 'mini': their filters may both match one record" in str(
        refused.value
    )
    with pytest.raises(PlanError, match="charges 'all' and 'gpt5'"):
        parse_plan(_plan(_tokens("all", None), _tokens("gpt5", "{model: 'gpt-5*'}")))


def test_filters_that_cannot_overlap_are_accepted() -> None:
    parse_plan(_plan(_tokens("gpt5", "{model: 'gpt-5*'}"), _tokens("gpt4", "{model: 'gpt-4*'}")))
    # One model's input and output priced apart: the same filter, no class in common.
    parse_plan(
        _plan(
            _tokens("in", "{model: gpt-5}", "[input]"), _tokens("out", "{model: gpt-5}", "[output]")
        )
    )
    # Unfiltered charges counting the same classes keep meaning what they always did.
    parse_plan(_plan(_tokens("a", None), _tokens("b", None)))


def test_a_filter_names_a_field_and_no_unknown_one() -> None:
    with pytest.raises(PlanError, match="filters: name at least one of"):
        parse_plan(_plan(_tokens("a", "{}")))
    with pytest.raises(PlanError, match="region"):
        parse_plan(_plan(_tokens("a", "{region: eu}")))
    task = "  - name: t\n    type: task\n    task_type: '*'\n    model: per_unit\n"
    task += "    unit_price: '1'\n    filters: {model: x}\n"
    with pytest.raises(PlanError, match="filters: not a field of task charges"):
        parse_plan(_plan(task))


def test_a_plan_without_filters_keeps_its_body() -> None:
    _, body = parse_plan(_plan(_tokens("a", None)))
    assert "filters" not in body["charges"][0]
    _, body = parse_plan(_plan(_tokens("a", "{model: 'gpt-5*'}")))
    assert body["charges"][0]["filters"] == {"model": "gpt-5*"}


PRICE_LIST = _plan(
    _tokens("gpt5", "{provider: openai, model: 'gpt-5*'}"),
    _tokens("support-4o", "{model: gpt-4o, task_type: support}").replace("'2'", "'1'"),
)


def _ledger(store: Store, ingest: Callable[..., Any], tmp_path: Any) -> None:
    report = ingest(
        usage("a", model="gpt-5", input_tokens=1_000_000, output_tokens=500_000),
        usage("b", model="gpt-5-mini", input_tokens=250_000, output_tokens=0),
        usage("c", model="gpt-4o", task_type="support", input_tokens=3_000_000, output_tokens=0),
        usage("d", model="gpt-4o", task_type="sales", input_tokens=700, output_tokens=11),
        usage("e", model="gpt-4o", input_tokens=5, output_tokens=6),
        usage("f", provider="anthropic", model="gpt-5x", input_tokens=40, output_tokens=2),
    )
    assert report.clean
    path = tmp_path / "plan.yaml"
    path.write_text(PRICE_LIST)
    plans.apply_plan(store, path)
    plans.subscribe(store, "acme", "p", dt.date(2026, 11, 1))


def test_filtered_charges_bill_their_records_and_report_the_rest(
    store: Store, ingest: Callable[..., Any], tmp_path: Any
) -> None:
    _ledger(store, ingest, tmp_path)
    [document] = invoices.run_invoices(store, "2026-11")
    fees = {fee["charge"]: fee for fee in document["fees"]}
    # By hand: gpt-5 and gpt-5-mini at $2/M: 1.75M tokens = $3.50; gpt-4o on support at
    # $1/M: 3M tokens = $3.00. The rest matches no charge.
    assert (fees["gpt5"]["units"], fees["gpt5"]["amount"]) == ("1750000", "3.50")
    assert (fees["support-4o"]["units"], fees["support-4o"]["amount"]) == ("3000000", "3.00")
    assert document["total"] == "6.50"
    assert document["unbilled"] == [
        {"task_type": None, "provider": "anthropic", "model": "gpt-5x",
         "tokens": {"input": 40, "output": 2}},
        {"task_type": None, "provider": "openai", "model": "gpt-4o",
         "tokens": {"input": 5, "output": 6}},
        {"task_type": "sales", "provider": "openai", "model": "gpt-4o",
         "tokens": {"input": 700, "output": 11}},
    ]  # fmt: skip
    # Said by the run, not kept in the invoice.
    assert "unbilled" not in invoices.invoice_document(store, document["id"])


def test_invoice_run_names_unbilled_usage_in_text_and_json(tmp_path: Any) -> None:
    from payoff.service import ingest_lines
    from payoff.store import open_store

    path = str(tmp_path / "ledger.db")
    store = open_store(path)
    lines = [(1, json.dumps(usage("x", model="o3", input_tokens=9, output_tokens=0)).encode())]
    assert ingest_lines(store, lines).clean
    plan = tmp_path / "plan.yaml"
    plan.write_text(PRICE_LIST)
    plans.apply_plan(store, plan)
    plans.subscribe(store, "acme", "p", dt.date(2026, 11, 1))
    store.close()
    text = runner.invoke(app, ["--db", path, "invoice", "run", "--period", "2026-11"])
    assert text.exit_code == 0, text.output
    assert "unbilled: acme: provider openai, model o3, no task_type: 9 input tokens" in text.output
    as_json = runner.invoke(app, ["--db", path, "invoice", "run", "--period", "2026-11", "--json"])
    [document] = json.loads(as_json.output)
    assert document["unbilled"][0]["tokens"] == {"input": 9}
    assert Decimal(document["total"]) == 0


def test_the_http_invoice_run_gives_unbilled_usage(tmp_path: Any) -> None:
    from fastapi.testclient import TestClient

    from payoff.api import ServerConfig, create_app
    from payoff.service import access, ingest_lines
    from payoff.store import open_store

    path = str(tmp_path / "ledger.db")
    store = open_store(path)
    lines = [(1, json.dumps(usage("x", model="o3", input_tokens=9, output_tokens=4)).encode())]
    assert ingest_lines(store, lines).clean
    plan = tmp_path / "plan.yaml"
    plan.write_text(PRICE_LIST)
    plans.apply_plan(store, plan)
    plans.subscribe(store, "acme", "p", dt.date(2026, 11, 1))
    admin = {"Authorization": f"Bearer {access.create_key(store, 'admin')[1]}"}
    store.close()
    with TestClient(create_app(ServerConfig(path, builders=0))) as client:
        response = client.post("/v1/invoice-runs", json={"period": "2026-11"}, headers=admin)
    assert response.status_code == 200, response.text
    [document] = response.json()
    assert document["unbilled"] == [
        {"task_type": None, "provider": "openai", "model": "o3",
         "tokens": {"input": 9, "output": 4}}
    ]  # fmt: skip


def test_payoff_verify_re_derives_a_filtered_invoice(
    store: Store, ingest: Callable[..., Any], tmp_path: Any
) -> None:
    from payoff.service.verify import verify_ledger

    _ledger(store, ingest, tmp_path)
    [draft] = invoices.run_invoices(store, "2026-11")
    invoices.act_on_invoice(store, draft["id"], "finalize")
    result = verify_ledger(store)
    assert (result.invoices, result.mismatches, result.not_rederived) == (1, [], [])


def test_simulate_refuses_a_filtered_plan_rather_than_price_it_wrong(tmp_path: Any) -> None:
    from payoff.service.economics import EconomicsError, load_plans

    path = tmp_path / "plan.yaml"
    path.write_text(PRICE_LIST)
    with pytest.raises(EconomicsError, match="charges with filters or compute are not simulated"):
        load_plans([path])
