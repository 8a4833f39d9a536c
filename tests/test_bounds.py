"""Every integer has a bound: crossing it is a refusal naming the line and field, never a crash,
and never the loss of the good records around it."""

from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from api_support import Keys, prepare_ledger
from factories import jsonl, usage
from payoff import nesting
from payoff.api import ServerConfig, create_app
from payoff.catalog import Catalog
from payoff.cli import app
from payoff.core.errors import RecordError
from payoff.plan_files import PlanError, parse_plan
from payoff.records import decode_record, record_from_dict
from payoff.service import IngestReport, ingest_lines, numbered_lines
from payoff.service import ingest as ingest_module
from payoff.store.protocol import Store

TWO_63 = 2**63
MAX_TOKENS = 10**10  # one call's bound, as docs/records.md states it
TIME = '"time": "2026-11-03T10:00:00Z", "customer": "acme"'
MODEL = '"provider": "openai", "model": "gpt-4o"'


def _line(id: str, fields: str, model: str = MODEL) -> bytes:
    return f'{{"id": "{id}", {TIME}, {model}, {fields}}}'.encode()


def _usage_line(id: str, usage_format: str, usage_object: str) -> bytes:
    return _line(id, f'"usage_format": "{usage_format}", "usage": {usage_object}')


# (line, field named) of counts no 64-bit column holds, or above the bound of one call.
OVER_THE_BOUND = [
    (_usage_line("o1", "openai.chat", f'{{"prompt_tokens": {TWO_63}, "completion_tokens": 1}}'),
     "usage.prompt_tokens"),
    (_usage_line("o2", "openai.responses", f'{{"input_tokens": 1, "output_tokens": {2**64}}}'),
     "usage.output_tokens"),
    (_usage_line("o3", "openai.chat",
                 f'{{"prompt_tokens": 10, "completion_tokens": 1, '
                 f'"prompt_tokens_details": {{"cached_tokens": {TWO_63 - 1}}}}}'),
     "usage.prompt_tokens_details.cached_tokens"),
    (_usage_line("o4", "anthropic", f'{{"input_tokens": {TWO_63 - 1}, "output_tokens": 1}}'),
     "usage.input_tokens"),
    # Each count is inside the bound; Anthropic's input is their sum, which is not.
    (_usage_line("o5", "anthropic",
                 f'{{"input_tokens": {MAX_TOKENS}, "cache_read_input_tokens": {MAX_TOKENS}, '
                 f'"output_tokens": 1}}'),
     "usage"),
    (_usage_line("o6", "gemini",
                 f'{{"promptTokenCount": 1, "candidatesTokenCount": {MAX_TOKENS}, '
                 f'"thoughtsTokenCount": {MAX_TOKENS}}}'),
     "usage"),
    (_line("o7", f'"input_tokens": {TWO_63}, "output_tokens": 1'), "input_tokens"),
    (_line("o8", f'"input_tokens": 5, "output_tokens": {MAX_TOKENS + 1}'), "output_tokens"),
]  # fmt: skip


def test_a_count_over_the_bound_is_refused_however_it_arrives_and_the_rest_lands(
    ingest: Callable[..., IngestReport], store: Store
) -> None:
    lines = [msgspec.json.encode(usage("good-1", task="t1"))]
    lines += [line for line, _ in OVER_THE_BOUND]
    lines += [msgspec.json.encode(usage("good-2", task="t1"))]
    report = ingest(*lines)
    assert (report.accepted, report.rejected) == (2, len(OVER_THE_BOUND))
    refused = [(p.line, p.id, p.field) for p in report.problems]
    expected = [(n, f"o{n - 1}", field) for n, (_, field) in enumerate(OVER_THE_BOUND, start=2)]
    assert refused == expected
    bounds = ("10,000,000,000", "<= 10000000000")
    assert all(any(b in p.reason for b in bounds) for p in report.problems), report.problems
    assert [(t.id, t.steps) for t in store.tasks()] == [("t1", 2)]


def test_a_count_at_the_bound_is_accepted(ingest: Callable[..., IngestReport]) -> None:
    report = ingest(
        _line("at", f'"input_tokens": {MAX_TOKENS}, "output_tokens": {MAX_TOKENS}'),
        _usage_line("at-a", "anthropic", f'{{"input_tokens": {MAX_TOKENS}, "output_tokens": 0}}'),
    )
    assert (report.accepted, report.rejected) == (2, 0)


def test_payoff_ingest_refuses_a_count_of_2_to_the_63_and_lands_the_lines_after_it(
    tmp_path: Path,
) -> None:
    db, file = tmp_path / "l.db", tmp_path / "records.jsonl"
    file.write_bytes(jsonl(usage("e1"), OVER_THE_BOUND[0][0], usage("e3")))
    result = CliRunner().invoke(app, ["--db", str(db), "ingest", str(file), "--json"])
    assert result.exit_code == 1, result.output
    assert msgspec.json.decode(result.stdout)["accepted"] == 2
    assert f"{file}:2 id=o1 rejected: field `usage.prompt_tokens`" in result.stderr
    assert "Traceback" not in result.output


def test_a_catalog_cost_no_column_holds_is_refused_naming_the_model(
    store: Store, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "prices:\n  - {provider: self, model: dear, input_mtok: 1000000000, output_mtok: 1}\n"
    )
    model = '"provider": "self", "model": "dear"'
    lines = jsonl(
        _line("cheap", '"input_tokens": 1, "output_tokens": 1', model),
        _line("dear", f'"input_tokens": {MAX_TOKENS}, "output_tokens": 1', model),
    )
    catalog = Catalog.from_file(prices)
    report = ingest_lines(store, numbered_lines(io.BytesIO(lines)), catalog=catalog)
    assert report.accepted == 1
    (problem,) = report.problems
    assert (problem.line, problem.field) == (2, "model")
    assert "more than the 999999999.999999999 USD one step may cost" in problem.reason


PLAN = """id: big
version: {version}
currency: USD
charges:
  - name: tokens
    type: tokens
    model: per_unit
    unit_price: "0.001"
    per: 1000
    hidden_tokens_per_task_max: {budget}
"""


@pytest.mark.parametrize(
    ("version", "budget", "named"),
    [(2**70, 10, "version"), (2**31, 10, "version"), (1, 2**70, "hidden_tokens_per_task_max")],
)
def test_a_plan_integer_no_column_holds_is_refused(version: int, budget: int, named: str) -> None:
    with pytest.raises(PlanError, match=named):
        parse_plan(PLAN.format(version=version, budget=budget))


def test_payoff_tasks_refuses_an_offset_no_query_can_take(tmp_path: Path) -> None:
    db = tmp_path / "l.db"
    file = tmp_path / "r.jsonl"
    file.write_bytes(jsonl(usage("e1", task="t1")))
    runner = CliRunner()
    assert runner.invoke(app, ["--db", str(db), "ingest", str(file)]).exit_code == 0
    result = runner.invoke(app, ["--db", str(db), "tasks", "--offset", str(2**63)])
    assert result.exit_code == 2
    assert "--offset" in result.stderr and "Traceback" not in result.output


@pytest.fixture
def client(tmp_path: Path) -> Iterator[tuple[TestClient, Keys]]:
    keys = prepare_ledger(tmp_path / "l.db")
    config = ServerConfig(str(tmp_path / "l.db"), builders=0)
    with TestClient(create_app(config), raise_server_exceptions=False) as test_client:
        yield test_client, keys


def test_over_http_a_count_over_the_bound_is_refused_in_its_place_never_a_500(client) -> None:
    http, keys = client
    body = jsonl(usage("e1"), OVER_THE_BOUND[0][0], OVER_THE_BOUND[6][0], usage("e4"))
    answer = http.post("/v1/events", content=body, headers=keys.header(keys.ingest))
    assert answer.status_code == 200, answer.text
    assert answer.json()["statuses"] == ["accepted", "rejected", "rejected", "accepted"]
    fields = [(p["index"], p["field"]) for p in answer.json()["problems"]]
    assert fields == [(1, "usage.prompt_tokens"), (2, "input_tokens")]


# -- nesting -----------------------------------------------------------------------------------

DEEP = 5_000


def _nested(depth: int, inner: str = "1") -> str:
    return '{"a": ' * depth + inner + "}" * depth


def _depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab:,'),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text('[]{}"\\k'), inner, max_size=3)
    ),
    max_leaves=60,
)


@settings(max_examples=300, deadline=None)
@given(json_values, st.integers(0, 70))
def test_the_nesting_measure_is_the_decoders(value: Any, extra: int) -> None:
    for _ in range(extra):
        value = [value]
    text = json.dumps(value)
    assert nesting.too_deep(text) == (_depth(value) > nesting.MAX_DEPTH)
    assert nesting.too_deep(text.encode()) == (_depth(value) > nesting.MAX_DEPTH)


def test_a_record_nested_past_the_bound_is_refused_naming_its_line_and_field(
    ingest: Callable[..., IngestReport],
) -> None:
    usage_at = '"usage_format": "openai.chat", "usage": {}'
    report = ingest(
        msgspec.json.encode(usage("e1")),
        _line("deep", usage_at.replace("{}", _nested(DEEP))),
        _line("ok", usage_at.replace("{}", _nested(nesting.MAX_DEPTH - 1))),
        _line("65", usage_at.replace("{}", _nested(nesting.MAX_DEPTH))),
        ("[" * DEEP + "]" * DEEP).encode(),
        msgspec.json.encode(usage("e6")),
    )
    assert report.accepted == 3  # 64 levels (the record, then 63 in `usage`) are read
    reason = "nests deeper than 64 levels of arrays and objects"
    problems = [(p.line, p.field, p.reason) for p in report.problems]
    assert problems == [(2, "usage", reason), (4, "usage", reason), (5, None, reason)]
    with pytest.raises(RecordError, match="nests deeper than 64"):
        record = usage("x", usage_format="openai.chat", usage={})
        for _ in range(DEEP):
            record["usage"] = {"a": record["usage"]}
        record_from_dict(record)


@pytest.mark.parametrize(
    "body",
    [
        "[" * DEEP + "]" * DEEP,
        _nested(DEEP),
        _line("a", '"usage_format": "openai.chat", "usage": ' + _nested(DEEP)).decode(),
        '{"record": "attestation", "id": ' + "[" * DEEP + "]" * DEEP + "}",
    ],
    ids=["arrays", "objects", "usage", "id"],
)
def test_a_deep_attestation_is_refused_in_words_never_a_500(client, body: str) -> None:
    http, keys = client
    for key in (keys.acme, keys.admin):
        answer = http.post("/v1/attestations", content=body, headers=keys.header(key))
        assert answer.status_code in (400, 422), answer.text
        detail = answer.json()["detail"]
        assert "nests deeper than 64 levels" in detail
        assert "recursion" not in detail.lower() and "Error" not in detail


def test_every_json_body_is_bounded_alike_and_named(client) -> None:
    http, keys = client
    admin = {**keys.header(keys.admin), "content-type": "application/json"}
    deep = _nested(DEEP)
    answers = {
        "events": http.post("/v1/events", content=_line("d", f'"attributes": {deep}'),
                            headers=keys.header(keys.ingest)),
        "traces": http.post("/v1/traces", content=deep, headers=admin),
        "plans": http.post("/v1/plans", content=deep, headers=admin),
        "customers": http.post("/v1/customers", content='{"id": "x", "name": ' + deep + "}",
                               headers=admin),
        "invoice-runs": http.post("/v1/invoice-runs", content="[" * DEEP + "]" * DEEP,
                                  headers=admin),
    }  # fmt: skip
    assert answers["events"].json()["problems"][0]["field"] == "attributes"
    assert {name: a.status_code for name, a in answers.items()} == {
        "events": 200, "traces": 400, "plans": 422, "customers": 400, "invoice-runs": 400
    }  # fmt: skip
    assert "field `name`" in answers["customers"].json()["detail"]
    for answer in answers.values():
        assert "nests deeper than 64 levels" in answer.text
        assert "recursion" not in answer.text.lower()


@pytest.mark.parametrize(
    "plan",
    [
        "id: p\nversion: 1\ncurrency: USD\ncharges: " + "[" * DEEP + "]" * DEEP,
        "id: p\nversion: 1\ncurrency: USD\ncharges:\n"
        + "".join("  " * n + "- \n" for n in range(1, 200)),
    ],
    ids=["flow", "indented"],
)
def test_a_deep_plan_is_refused_in_words(plan: str) -> None:
    with pytest.raises(PlanError, match="nests deeper than 64 levels"):
        parse_plan(plan)


# -- lines, repeated keys, strict inputs -------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def test_a_10_mb_line_is_refused_with_its_number_unread_and_ingest_goes_on(
    ingest: Callable[..., IngestReport],
) -> None:
    big = b'{"id": "big", "attributes": {"a": "' + b"x" * TEN_MB + b'"}}'
    lines = list(numbered_lines(io.BytesIO(jsonl(usage("e1"), big, b"x" * TEN_MB, usage("e4")))))
    assert [number for number, _ in lines] == [1, 2, 3, 4]
    assert max(len(line) for _, line in lines) == ingest_module.LINE_READ_BYTES  # never whole
    report = ingest(usage("e1"), big, usage("e3"), b"x" * TEN_MB, usage("e5"))
    assert report.accepted == 3
    refused = [(p.line, p.id, p.reason) for p in report.problems]
    too_long = "longer than the 65,536 bytes a record may be"
    assert refused == [(2, "big", too_long), (4, None, too_long)]


def test_lines_are_cut_into_batches_by_bytes_as_well_as_by_count() -> None:
    line = b"x" * (64 * 1024)
    batches = list(ingest_module._batches((n, line) for n in range(1, 1001)))
    assert sum(len(b) for b in batches) == 1000
    assert max(sum(len(line) for _, line in b) for b in batches) <= ingest_module.BATCH_BYTES
    assert [len(b) for b in ingest_module._batches((n, b"{}") for n in range(25_000))] == [
        10_000, 10_000, 5_000
    ]  # fmt: skip


def _peak_rss_bytes(process: subprocess.Popen[bytes]) -> int:
    """Peak resident memory of a process and its children, summed, sampled until it exits."""
    peak = 0
    while process.poll() is None:
        total, pending = 0, [process.pid]
        while pending:
            pid = pending.pop()
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                for task in Path(f"/proc/{pid}/task").iterdir():
                    pending += [int(c) for c in (task / "children").read_text().split()]
            except (FileNotFoundError, ProcessLookupError):
                continue
            total += next(
                (int(s.split()[1]) * 1024 for s in status.splitlines() if s.startswith("VmRSS:")),
                0,
            )
        peak = max(peak, total)
        time.sleep(0.02)
    return peak


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_payoff_ingest_of_a_10_mb_line_stays_within_300_mb(tmp_path: Path) -> None:
    file = tmp_path / "records.jsonl"
    good = [msgspec.json.encode(usage(f"e{n}", task=f"t{n % 50}")) for n in range(25_000)]
    big = (
        b'{"id": "big", "usage_format": "openai.chat", "usage": {'
        + b",".join(b'"k%d": %d' % (n, n) for n in range(TEN_MB // 16))
        + b"}}"
    )
    file.write_bytes(b"\n".join([*good[:12_000], big, *good[12_000:]]) + b"\n")
    command = [sys.executable, "-m", "payoff", "--db", str(tmp_path / "l.db"), "ingest",
               str(file), "--json"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = _peak_rss_bytes(process)
    stdout, stderr = process.communicate()
    assert process.returncode == 1, stderr
    assert msgspec.json.decode(stdout)["accepted"] == 25_000
    assert b":12001 id=big rejected: longer than the 65,536 bytes" in stderr
    assert peak < 300 * 10**6, f"peak RSS {peak / 10**6:.0f} MB"


@pytest.mark.parametrize(
    ("line", "field"),
    [
        (b'{"id": "a", "id": "b", "time": "2026-11-03T10:00:00Z", "customer": "acme", '
         b'"kind": "tool"}', "id"),
        (b'{"id": "a", "time": "2026-11-03T10:00:00Z", "customer": "acme", "kind": "tool", '
         b'"attributes": {"step": "plan", "step": "act"}}', "attributes.step"),
        (_usage_line("u", "openai.chat", '{"prompt_tokens": 5, "completion_tokens": 1, '
                     '"prompt_tokens_details": {"cached_tokens": 1, "cached_tokens": 4}}'),
         "usage.prompt_tokens_details.cached_tokens"),
        # The same key spelled with an escape, and spaced before its colon.
        (b'{"id": "a", "\\u0069d": "b", "time": "2026-11-03T10:00:00Z", "customer": "acme", '
         b'"kind": "tool"}', "id"),
        (b'{"id" : "a", "id":"b", "time": "2026-11-03T10:00:00Z", "customer": "acme", '
         b'"kind": "tool"}', "id"),
        (b'{"id"\n: "a", "id": "b", "time": "2026-11-03T10:00:00Z", "customer": "acme", '
         b'"kind": "tool"}\n', "id"),
        (b'{"record": "task", "id": "t", "status": "open", "status": "completed", '
         b'"customer": "acme", "time": "2026-11-03T10:00:00Z"}', "status"),
        # The last value would be refused on its own (reasoning beyond output): the key
        # given twice is the fault named.
        (b'{"id": "a", "time": "2026-11-03T10:00:00Z", "customer": "acme", "provider": "x", '
         b'"model": "m", "input_tokens": 5, "output_tokens": 112, "reasoning_tokens": 8, '
         b'"output_tokens": 7}', "output_tokens"),
    ],
)  # fmt: skip
def test_a_key_given_twice_is_refused_naming_it(line: bytes, field: str) -> None:
    with pytest.raises(RecordError) as refused:
        decode_record(line, line=9)
    assert (refused.value.line, refused.value.field) == (9, field)
    assert "given twice" in refused.value.reason


def test_keys_given_once_pass_however_they_are_spelled() -> None:
    for line in (
        b'{"id": "a:\\"b\\"", "time": "2026-11-03T10:00:00Z", "customer": "acme", '
        b'"kind": "tool", "attributes": {"id": ":", "time": "x"}}',
        b'{"id":"a","time":"2026-11-03T10:00:00Z","customer":"acme","kind":"tool",'
        b'"attributes":{"note":": starts with a colon"}}',
    ):
        assert decode_record(line).id.startswith("a")


def test_over_http_a_record_with_a_key_given_twice_is_refused_in_its_place(client) -> None:
    http, keys = client
    body = jsonl(usage("e1"), b'{"id": "e2", "id": "e3", "time": "2026-11-03T10:00:00Z", '
                 b'"customer": "acme", "kind": "tool"}')  # fmt: skip
    answer = http.post("/v1/events", content=body, headers=keys.header(keys.ingest)).json()
    assert answer["statuses"] == ["accepted", "rejected"]
    assert answer["problems"][0]["field"] == "id"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/customers/acme/secret", {"previous_valid_for_s": True}, "previous_valid_for_s"),
        ("/v1/customers/acme/secret", {"previous_valid_for_s": "30"}, "previous_valid_for_s"),
        ("/v1/customers/acme/secret", {"previous_valid_for_s": 30.0}, "previous_valid_for_s"),
        ("/v1/subscriptions", {"customer": "acme", "plan": "outcomes", "from": 0}, "from"),
        ("/v1/subscriptions",
         {"customer": "acme", "plan": "outcomes", "from": "2030-01-01T00:00:00"}, "from"),
        ("/v1/subscriptions/end", {"customer": "acme", "from": True}, "from"),
        ("/v1/invoice-runs", {"period": "2026-11", "as_of": 1_700_000_000}, "as_of"),
        ("/v1/invoice-runs", {"period": "2026-11", "as_of": True}, "as_of"),
    ],
)  # fmt: skip
def test_api_inputs_are_as_strict_as_documented(client, path: str, body: dict, field: str) -> None:
    http, keys = client
    answer = http.post(path, json=body, headers=keys.header(keys.admin))
    assert answer.status_code == 422, answer.text
    assert [e["loc"][-1] for e in answer.json()["detail"]] == [field]


def test_api_inputs_as_documented_still_pass(client) -> None:
    http, keys = client
    admin = keys.header(keys.admin)
    rotated = http.post("/v1/customers/acme/secret", json={"previous_valid_for_s": 30},
                        headers=admin)  # fmt: skip
    assert rotated.status_code == 200, rotated.text
    later = (dt.datetime.now(dt.UTC).date() + dt.timedelta(days=40)).isoformat()
    moved = http.post("/v1/subscriptions", json={"customer": "acme", "plan": "outcomes",
                                                 "from": later}, headers=admin)  # fmt: skip
    assert moved.status_code == 200, moved.text
    run = http.post(
        "/v1/invoice-runs",
        json={"period": "2026-11", "as_of": "2026-12-01T00:00:00Z"},
        headers=admin,
    )
    assert run.status_code == 200, run.text


def test_a_bundle_line_nested_past_the_bound_is_refused_in_words(tmp_path: Path) -> None:
    from payoff.core.canonical import DocumentError
    from payoff.service.bundles import check_bundle_file

    bundle = tmp_path / "deep.bundle"
    bundle.write_text("[" * DEEP + "]" * DEEP + "\n")
    with pytest.raises(DocumentError, match="line 1: nests deeper than 64 levels"):
        check_bundle_file(bundle)
