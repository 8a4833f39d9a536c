"""The files in examples/ do what the README and the docs say they do."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api_support import SHORT_SETTLE, live_server, prepare_ledger
from payoff import demo, service
from payoff.records import (
    AttestationRecord,
    OutcomeRecord,
    SignalRecord,
    TaskRecord,
    UsageRecord,
    UsageRecordV2,
    record_from_dict,
)
from payoff.service import plans
from payoff.store import open_store

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
USAGE = EXAMPLES / "usage.jsonl"


def usage_records() -> list[dict]:
    return [json.loads(line) for line in USAGE.read_text().splitlines() if line.strip()]


def test_the_usage_example_has_every_record_kind_and_usage_format() -> None:
    records = usage_records()
    kinds = {r.get("record", "usage") for r in records}
    assert kinds == {"usage", "task", "outcome", "attestation", "signal"}
    usage = [r for r in records if r.get("record", "usage") == "usage"]
    assert {r.get("usage_format") for r in usage} == {
        None,  # plain token fields
        "openai.chat",
        "openai.responses",
        "anthropic",
        "gemini",
    }
    assert {r.get("kind", "llm") for r in usage} == {"llm", "tool", "custom"}
    assert any("input_tokens" in r for r in usage)  # plain token fields beside usage objects
    assert {r["status"] for r in records if r.get("record") == "task"} == {
        "open",
        "completed",
        "failed",
    }
    outcomes = [r for r in records if r.get("record") == "outcome"]
    assert outcomes and all(r["value"] and r["evidence_digest"] for r in outcomes)
    verdicts = {r["verdict"] for r in records if r.get("record") == "attestation"}
    assert verdicts == {"accept", "reject"}
    # Ids as clients send them; times in one month.
    ids = [r["id"] for r in records if r.get("record") != "task"]
    assert len(ids) == len(set(ids))
    assert any(i.startswith("chatcmpl-") for i in ids) and any(i.startswith("msg_") for i in ids)
    months = {dt.datetime.fromisoformat(r["time"]).astimezone(dt.UTC).strftime("%Y-%m")
              for r in records}  # fmt: skip
    assert months == {"2026-11"}


def test_the_usage_example_ingests_with_no_rejection_and_once_only(tmp_path: Path) -> None:
    # The verdicts assume plans that ask customers to verify claims: acme is on the demo's
    # plan, northwind on examples/plans/verified-outcomes.yaml, as in the README Quickstart.
    store = open_store(tmp_path / "l.db")
    plans.apply_plan_text(store, demo.DEMO_PLAN, "demo plan")
    plans.apply_plan(store, EXAMPLES / "plans" / "verified-outcomes.yaml")
    for customer, plan in (("acme", "demo-outcomes"), ("northwind", "verified-outcomes")):
        plans.add_customer(store, customer)
        plans.subscribe(store, customer, plan, dt.date(2026, 11, 1))
    lines = len(usage_records())
    with USAGE.open("rb") as stream:
        first = service.ingest_lines(store, service.numbered_lines(stream))
    assert [p.reason for p in first.problems] == []
    assert (first.accepted, first.rejected, first.conflicts) == (lines, 0, 0)
    with USAGE.open("rb") as stream:
        again = service.ingest_lines(store, service.numbered_lines(stream))
    assert (again.accepted, again.duplicates) == (0, lines)
    tasks = service.list_tasks(store, "northwind")
    assert {t.status for t in tasks} == {"completed", "failed"}
    assert all(t.unpriced_steps == 0 and t.tokens_hidden > 0 for t in tasks)
    store.close()


@pytest.mark.slow
def test_the_opentelemetry_example_agent_is_metered_by_a_live_server(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    with live_server(db, log, *SHORT_SETTLE) as server:
        env = {
            **os.environ,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{server.url}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"Authorization=Bearer%20{keys.ingest}",
        }
        agent = subprocess.run(
            [sys.executable, str(EXAMPLES / "otel_agent.py"), "2"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert agent.returncode == 0, agent.stderr
        task_ids = agent.stdout.split()
        assert len(task_ids) == 2
        server.wait_judged()
        for task_id in task_ids:
            answer = httpx.get(f"{server.url}/v1/tasks/{task_id}", headers=keys.header(keys.acme))
            assert answer.status_code == 200, answer.text
            task = answer.json()
            assert (task["customer"], task["type"], task["status"]) == (
                "acme",
                "support.ticket",
                "completed",
            )
            assert [s["kind"] for s in task["step_list"]] == ["llm", "tool", "llm"]
            assert task["tokens_visible"] > 0 and task["tokens_hidden"] > 0
            assert task["unpriced_steps"] == 0 and task["cost_usd"] is not None


# -- docs/records.md is the record reference -----------------------------------------------

DOCS = EXAMPLES.parent / "docs"
REFERENCE = DOCS / "records.md"


def reference_section(kind: str) -> str:
    text = REFERENCE.read_text()
    start = text.index(f"## `{kind}`")
    return text[start : text.index("\n## ", start + 1)]


@pytest.mark.parametrize(
    "struct", [UsageRecord, TaskRecord, OutcomeRecord, AttestationRecord, SignalRecord]
)
def test_the_record_reference_has_a_row_for_every_field_and_examples_that_decode(
    struct: type,
) -> None:
    kind = struct.__struct_config__.tag
    section = reference_section(kind)
    documented = re.findall(r"^\| `(\w+)` \|", section, re.MULTILINE)
    assert documented[0] == "record"
    # The usage table holds the fields of both versions.
    fields = UsageRecordV2 if struct is UsageRecord else struct
    assert sorted(documented[1:]) == sorted(fields.__struct_fields__)
    examples = re.findall(r"^```json\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert examples, f"no example of {kind}"
    decoder, text, at = json.JSONDecoder(), examples[0].strip(), 0
    while at < len(text):
        record, at = decoder.raw_decode(text, at)
        assert isinstance(record_from_dict(record), struct)
        at = len(text) - len(text[at:].lstrip())


def test_the_version_2_examples_decode_with_their_details() -> None:
    text = REFERENCE.read_text()
    start = text.index("## Record format version 2")
    section = text[start : text.index("\n## ", start + 1)].split("```json\n")[1]
    decoder, text, at, found = json.JSONDecoder(), section.split("```")[0].strip(), 0, []
    while at < len(text):
        record, at = decoder.raw_decode(text, at)
        found.append(record_from_dict(record))
        at = len(text) - len(text[at:].lstrip())
    assert [type(record) for record in found] == [UsageRecordV2, UsageRecordV2]
    assert [record.usage_details().output_image for record in found] == [1290, 0]
    assert [record.usage_details().web_search_requests for record in found] == [0, 1]


def test_no_doc_points_outside_the_repository() -> None:
    for page in [EXAMPLES.parent / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text()
        assert not re.search(r"\]\(\.\./|\bshared/|EVENTS\.md", text), page.name
        assert "not built yet" not in text, page.name
