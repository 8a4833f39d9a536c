"""Record format v1: every kind decodes; anything malformed is refused naming its field."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from factories import NOV_3, NOV_3_US, usage
from payoff.core.errors import RecordError
from payoff.records import (
    AttestationRecord,
    OutcomeRecord,
    TaskRecord,
    UsageRecord,
    decode_record,
)


def decode(record: dict[str, Any]) -> Any:
    return decode_record(msgspec.json.encode(record), line=7)


def test_each_record_kind_decodes() -> None:
    assert isinstance(decode(usage("e1")), UsageRecord)
    assert isinstance(decode(usage("e1", record="usage")), UsageRecord)
    task = {"record": "task", "id": "t1", "customer": "acme", "status": "completed", "time": NOV_3}
    assert isinstance(decode(task), TaskRecord)
    outcome = {
        "record": "outcome",
        "id": "o1",
        "task": "t1",
        "customer": "acme",
        "type": "ticket.resolved",
        "value": "120.00",
        "time": NOV_3,
        "evidence_digest": "sha256:9f2c",
    }
    assert isinstance(decode(outcome), OutcomeRecord)
    attestation = {
        "record": "attestation",
        "id": "a1",
        "outcome": "o1",
        "verdict": "accept",
        "time": NOV_3,
    }
    assert isinstance(decode(attestation), AttestationRecord)


@pytest.mark.parametrize(
    "record",
    [
        {"id": "t1", "customer": "acme", "status": "completed", "time": NOV_3, "record": "task"},
        {"id": "o1", "task": "t1", "customer": "acme", "type": "ticket.resolved",
         "time": NOV_3, "record": "outcome"},
        {"verdict": "accept", "record": "attestation", "id": "a1", "outcome": "o1",
         "time": NOV_3},
    ],
    ids=["task", "outcome", "attestation"],
)  # fmt: skip
def test_a_record_decodes_whatever_the_place_of_its_record_field(record: dict[str, Any]) -> None:
    # JSON objects are unordered: `record` may come after fields that only its kind has.
    record_first = {"record": record["record"], **record}
    assert decode(record) == decode(record_first)
    assert type(decode(record)).__name__ == f"{record['record'].title()}Record"


def test_tool_and_custom_steps() -> None:
    tool = decode({"id": "e1", "time": NOV_3, "customer": "acme", "kind": "tool", "cost": "0.004"})
    assert tool.kind == "tool" and tool.token_counts().total == 0
    custom = decode(
        {
            "id": "e2",
            "time": NOV_3,
            "customer": "acme",
            "kind": "custom",
            "quantity": "2.5",
            "unit": "pages",
        }
    )
    assert str(custom.quantity) == "2.5"


def test_time_is_stored_as_utc() -> None:
    from payoff.core.periods import to_us

    shifted = decode(usage("e1", time="2026-11-03T12:00:00+02:00"))
    assert to_us(shifted.time) == NOV_3_US == 1_793_700_000 * 10**6


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (usage("e1", colour="red"), "colour", "unknown field"),
        (usage("e1", time="2026-11-03T10:00:00"), "time", "timezone"),
        (usage("e1", input_tokens=-1), "input_tokens", ">= 0"),
        (usage("e1", input_tokens="12"), "input_tokens", "Expected `int"),
        (usage("e1", cache_read_tokens=2000), "input_tokens", "exceed input_tokens"),
        (usage("e1", reasoning_tokens=301), "reasoning_tokens", "exceed output_tokens"),
        (usage("e1", provider=None), "provider", "required for kind `llm`"),
        (usage("e1", output_tokens=None), "output_tokens", "required for kind `llm`"),
        (usage("e1", kind="robot"), "kind", "Invalid enum value"),
        (
            usage(
                "",
            ),
            "id",
            "length >= 1",
        ),
        (usage("x" * 256), "id", "length <= 255"),
        (usage("e1", cost="0.0000000001"), "cost", "at most 9 decimal places"),
        (usage("e1", cost="-1"), "cost", "not a decimal string"),
        (usage("e1", cost="1_000"), "cost", "not a decimal string"),
        (usage("e1", cost="1e3"), "cost", "not a decimal string"),
        (usage("e1", cost="1000000000"), "cost", "below 1,000,000,000"),
        (usage("e1", input_tokens=2**63), "input_tokens", "<= 10000000000"),
        (usage("e1", output_tokens=10**15), "output_tokens", "<= 10000000000"),
        (usage("e1", time="0001-01-01T00:00:00+14:00"), "time", "from 1970-01-01"),
        (usage("e1", time="9999-12-31T23:59:59-14:00"), "time", "from 1970-01-01"),
        (usage("e1", time="1969-12-31T23:59:59Z"), "time", "from 1970-01-01"),
        (
            {
                "id": "e1",
                "time": NOV_3,
                "customer": "acme",
                "kind": "custom",
                "unit": "pages",
                "quantity": "1e400",
            },
            "quantity",
            "a decimal from 0",
        ),
        ({"id": "e1", "time": NOV_3, "kind": "tool"}, "customer", "missing required field"),
        (usage("e1", attributes={"a": 1}), "attributes[...]", "Expected `str`"),
        (
            usage("e1", usage_format="anthropic", usage={"input_tokens": 1, "output_tokens": 2}),
            "input_tokens",
            "not both",
        ),
        (
            usage("e1", input_tokens=None, output_tokens=None, usage_format="anthropic"),
            "usage",
            "go together",
        ),
        (
            usage("e1", input_tokens=None, output_tokens=None, usage_format="cohere", usage={}),
            "usage_format",
            "Invalid enum value",
        ),
        (
            usage(
                "e1",
                input_tokens=None,
                output_tokens=None,
                usage_format="anthropic",
                usage={"input_tokens": -3, "output_tokens": 1},
            ),
            "usage.input_tokens",
            "non-negative",
        ),
        (
            {"id": "e1", "time": NOV_3, "customer": "acme", "kind": "custom", "unit": "pages"},
            "quantity",
            "required for kind `custom`",
        ),
        (
            {"record": "task", "id": "t1", "customer": "acme", "status": "done", "time": NOV_3},
            "status",
            "Invalid enum value",
        ),
        (
            {
                "record": "outcome",
                "id": "o1",
                "task": "t1",
                "customer": "acme",
                "type": "x",
                "value": "lots",
                "time": NOV_3,
            },
            "value",
            "not a plain non-negative decimal",
        ),
        (
            {
                "record": "attestation",
                "id": "a1",
                "outcome": "o1",
                "verdict": "maybe",
                "time": NOV_3,
            },
            "verdict",
            "Invalid enum value",
        ),
        ({"record": "invoice", "id": "i1"}, "record", "Invalid value"),
    ],
)
def test_malformed_records_name_line_and_field(
    record: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(RecordError) as caught:
        decode(record)
    assert caught.value.line == 7
    assert caught.value.field == field
    assert reason in caught.value.reason
    assert "line 7" in str(caught.value) and field in str(caught.value)


def test_bad_json_is_refused_with_its_line() -> None:
    with pytest.raises(RecordError, match="line 3: not valid JSON"):
        decode_record(b'{"id": "e1", ', line=3)


def test_provider_usage_object_is_normalised_to_inclusive_buckets() -> None:
    record = decode(
        usage(
            "e1",
            provider="anthropic",
            model="claude-sonnet-4-5",
            input_tokens=None,
            output_tokens=None,
            usage_format="anthropic",
            usage={
                "input_tokens": 4,
                "cache_read_input_tokens": 1163,
                "cache_creation_input_tokens": 10,
                "output_tokens": 202,
            },
        )
    )
    assert record.token_counts() == (1177, 1163, 10, 202, 0)
