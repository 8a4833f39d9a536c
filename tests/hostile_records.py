"""Hypothesis strategies for streams of records: valid, duplicate, conflicting and hostile.

A stream is a list of lines, each generated with its intent (stream_model): a valid record
of any kind (usage in every provider's format, as token fields, tool and custom steps; task,
outcome and attestation records), the same record spelled another way (a duplicate), the
same key with other content (a conflict), or a line made hostile in a known way. Ids come
from small pools so that keys, tasks and outcomes collide; `@@` in them stands for a prefix
given when the stream is written, so that the streams of many examples share one ledger.

Each hostile kind has a name (HOSTILE_KINDS). Those the product does not yet survive are
listed in reliability.KNOWN_BROKEN: the main fuzzer leaves them out, and each one has its
own test that is expected to fail until it is fixed.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from payoff.records import MAX_RECORD_BYTES
from stream_model import ANY_FIELD, Intent, Malformed, Valid

PREFIX = "@@"
USAGE_IDS = [f"{PREFIX}e{i}" for i in range(8)]
TASK_IDS = [f"{PREFIX}t{i}" for i in range(4)]
OUTCOME_IDS = [f"{PREFIX}o{i}" for i in range(4)]
VERDICT_IDS = [f"{PREFIX}v{i}" for i in range(4)]
CUSTOMERS = ["acme", "globex"]
TASK_TYPES = ["support.ticket", "coding.change"]
# Outcomes are claimed in November, verdicts given in December: a verdict is never dated
# before its claim, whatever pair of them a stream draws.
CLAIM_TIMES = [dt.datetime(2026, 11, d, h, tzinfo=dt.UTC) for d in (3, 17) for h in (9, 14)]
VERDICT_TIMES = [dt.datetime(2026, 12, 2, h, 30, tzinfo=dt.UTC) for h in (8, 16)]
OFFSETS = [0, 60, -300, 330]
"""Minutes east of UTC a time may be written in: the same instant, spelled otherwise."""
MAX_TOKENS = 10**10
MAX_COST = "999999999.999999999"

TOKEN_FIELDS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
HOSTILE_KINDS = (
    "missing_field",
    "unknown_field",
    "wrong_type",
    "out_of_bounds",
    "parts_exceed_totals",
    "bad_enum",
    "huge_string",
    "not_an_object",
    "truncated",
    "invalid_utf8",
    "deep_nesting",
    "deep_nesting_in_usage",
    "usage_count_out_of_bounds",
    "duplicate_keys",
    "max_cost",
)
"""Every way a line is made hostile. `max_cost` lines are valid (the largest cost allowed,
ten of them in one task): they stress the sums that read them back."""


def us(moment: dt.datetime) -> int:
    return int(moment.timestamp()) * 10**6 + moment.microsecond


def spell_time(moment: dt.datetime, offset_minutes: int) -> str:
    local = moment.astimezone(dt.timezone(dt.timedelta(minutes=offset_minutes)))
    return local.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def nanousd(cost: str) -> int:
    return int(Decimal(cost) * 10**9)


# -- valid records, with the content the ledger keeps ------------------------------------


def _counts_from_usage(usage_format: str, usage: dict[str, Any]) -> tuple[int, ...]:
    """The inclusive buckets of a provider's usage object, as docs/records.md tables them."""

    def get(*path: str) -> int:
        value: Any = usage
        for name in path:
            value = value.get(name, {}) if isinstance(value, dict) else {}
        return value if isinstance(value, int) else 0

    if usage_format in ("openai.chat", "openai.responses"):
        given, out = (
            ("prompt", "completion") if usage_format == "openai.chat" else ("input", "output")
        )
        return (
            get(f"{given}_tokens"),
            get(f"{given}_tokens_details", "cached_tokens"),
            0,
            get(f"{out}_tokens"),
            get(f"{out}_tokens_details", "reasoning_tokens"),
        )
    if usage_format == "anthropic":
        read, write = get("cache_read_input_tokens"), get("cache_creation_input_tokens")
        return (get("input_tokens") + read + write, read, write, get("output_tokens"), 0)
    thoughts = get("thoughtsTokenCount") or get("thoughts_token_count")
    return (
        (get("promptTokenCount") or get("prompt_token_count"))
        + (get("toolUsePromptTokenCount") or get("tool_use_prompt_token_count")),
        get("cachedContentTokenCount") or get("cached_content_token_count"),
        0,
        (get("candidatesTokenCount") or get("candidates_token_count")) + thoughts,
        thoughts,
    )


def usage_content(record: dict[str, Any]) -> Valid:
    """What the ledger keeps of a valid usage record."""
    if "usage" in record:
        counts = _counts_from_usage(record["usage_format"], record["usage"])
    else:
        counts = tuple(record.get(name, 0) for name in TOKEN_FIELDS)
    content = {
        "time": us(dt.datetime.fromisoformat(record["time"])),
        "customer": record["customer"],
        "task": record.get("task"),
        "task_type": record.get("task_type"),
        "kind": record.get("kind", "llm"),
        "provider": record.get("provider"),
        "model": record.get("model"),
        **dict(zip(TOKEN_FIELDS, counts, strict=True)),
        "visible": record.get("visible", False),
        "batch": record.get("batch", False),
        "quantity": None if "quantity" not in record else str(Decimal(record["quantity"])),
        "unit": record.get("unit"),
        "cost": None if "cost" not in record else nanousd(record["cost"]),
        "attributes": record.get("attributes"),
    }
    return Valid("usage", ("usage", record["id"]), tuple(sorted(content.items(), key=repr)))


def content_of(record: dict[str, Any]) -> Valid:
    kind = record.get("record", "usage")
    if kind == "usage":
        return usage_content(record)
    names = {
        "task": ("customer", "type"),
        "outcome": ("task", "customer", "type", "value", "evidence_digest"),
        "attestation": ("outcome", "verdict"),
    }[kind]
    content = {name: record.get(name) for name in names}
    content["time"] = us(dt.datetime.fromisoformat(record["time"]))
    key = ("task", record["id"], record["status"]) if kind == "task" else (kind, record["id"])
    return Valid(kind, key, tuple(sorted(content.items(), key=repr)))


counts = st.integers(0, 5_000)


@st.composite
def _provider_usage(draw: st.DrawFn) -> dict[str, Any]:
    usage_format = draw(st.sampled_from(["openai.chat", "openai.responses", "anthropic", "gemini"]))
    given, out = draw(counts), draw(counts)
    cached, reasoning = draw(st.integers(0, given)), draw(st.integers(0, out))
    usage: dict[str, Any]
    if usage_format == "openai.chat":
        usage = {"prompt_tokens": given, "completion_tokens": out, "total_tokens": given + out,
                 "prompt_tokens_details": {"cached_tokens": cached},
                 "completion_tokens_details": {"reasoning_tokens": reasoning}}  # fmt: skip
    elif usage_format == "openai.responses":
        usage = {"input_tokens": given, "output_tokens": out,
                 "input_tokens_details": {"cached_tokens": cached},
                 "output_tokens_details": {"reasoning_tokens": reasoning}}  # fmt: skip
    elif usage_format == "anthropic":
        usage = {"input_tokens": given, "cache_read_input_tokens": cached,
                 "cache_creation_input_tokens": draw(counts), "output_tokens": out,
                 "service_tier": "standard"}  # fmt: skip
    else:
        usage = {"promptTokenCount": given, "cachedContentTokenCount": cached,
                 "candidatesTokenCount": out, "thoughtsTokenCount": reasoning,
                 "toolUsePromptTokenCount": draw(counts)}  # fmt: skip
        if draw(st.booleans()):
            usage = {_snake(name): value for name, value in usage.items()}
    return {"usage_format": usage_format, "usage": usage}


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


@st.composite
def _token_fields(draw: st.DrawFn) -> dict[str, Any]:
    given = draw(st.one_of(counts, st.just(MAX_TOKENS)))
    out = draw(counts)
    fields = {"input_tokens": given, "output_tokens": out}
    if draw(st.booleans()):
        fields["cache_read_tokens"] = draw(st.integers(0, given))
    if draw(st.booleans()):
        fields["reasoning_tokens"] = draw(st.integers(0, out))
    return fields


@st.composite
def usage_records(draw: st.DrawFn, *, max_cost: bool = False) -> dict[str, Any]:
    record: dict[str, Any] = {
        "id": draw(st.sampled_from(USAGE_IDS)),
        "time": spell_time(draw(st.sampled_from(CLAIM_TIMES)), 0),
        "customer": draw(st.sampled_from(CUSTOMERS)),
    }
    if draw(st.integers(0, 4)):
        record["task"] = draw(st.sampled_from(TASK_IDS))
        if draw(st.booleans()):
            record["task_type"] = draw(st.sampled_from(TASK_TYPES))
    shape = draw(st.sampled_from(["tokens", "provider", "provider", "tool", "custom"]))
    if shape in ("tokens", "provider"):
        record["provider"], record["model"] = draw(
            st.sampled_from(
                [
                    ("openai", "gpt-4o"),
                    ("anthropic", "claude-sonnet-4-5"),
                    ("google", "gemini-2.5-pro"),
                    ("nobody", "unknown-1"),
                ]
            )
        )
        record.update(draw(_token_fields() if shape == "tokens" else _provider_usage()))
        if draw(st.booleans()):
            record["visible"] = True
        if draw(st.integers(0, 5)) == 0:
            record["batch"] = True
    else:
        record["kind"] = shape
        costs = st.sampled_from(["0.004", "0", "1.5", "0.000000001", "999999999"])
        record["cost"] = MAX_COST if max_cost else draw(costs)
        if shape == "custom":
            record["quantity"] = draw(st.sampled_from(["14", "0.5", "1000000000000000"]))
            record["unit"] = "page"
    if draw(st.integers(0, 3)) == 0:
        record["attributes"] = draw(
            st.dictionaries(
                st.sampled_from(["tool", "step", "ünï"]),
                st.text(
                    st.characters(exclude_characters="@", exclude_categories=["Cs"]), max_size=8
                ),
            )
        )
    return record


@st.composite
def task_records(draw: st.DrawFn) -> dict[str, Any]:
    record = {
        "record": "task",
        "id": draw(st.sampled_from(TASK_IDS)),
        "customer": draw(st.sampled_from(CUSTOMERS)),
        "status": draw(st.sampled_from(["open", "completed", "failed", "abandoned"])),
        "time": spell_time(draw(st.sampled_from(CLAIM_TIMES)), 0),
    }
    if draw(st.booleans()):
        record["type"] = draw(st.sampled_from(TASK_TYPES))
    return record


@st.composite
def outcome_records(draw: st.DrawFn) -> dict[str, Any]:
    record = {
        "record": "outcome",
        "id": draw(st.sampled_from(OUTCOME_IDS)),
        "task": draw(st.sampled_from(TASK_IDS)),
        "customer": draw(st.sampled_from(CUSTOMERS)),
        "type": "ticket.resolved",
        "time": spell_time(draw(st.sampled_from(CLAIM_TIMES)), 0),
    }
    if draw(st.booleans()):
        record["value"] = draw(st.sampled_from(["120.00", "0", "999999999999999.5"]))
    if draw(st.booleans()):
        record["evidence_digest"] = "sha256:" + "ab" * 32
    return record


@st.composite
def attestation_records(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "record": "attestation",
        "id": draw(st.sampled_from(VERDICT_IDS)),
        "outcome": draw(st.sampled_from(OUTCOME_IDS)),
        "verdict": draw(st.sampled_from(["accept", "accept", "reject", "reverse"])),
        "time": spell_time(draw(st.sampled_from(VERDICT_TIMES)), 0),
    }


def valid_records(*, max_cost: bool = False) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        usage_records(max_cost=max_cost),
        usage_records(max_cost=max_cost),
        task_records(),
        outcome_records(),
        attestation_records(),
    )


# -- spelling a record: the same content, other bytes ------------------------------------


@st.composite
def spelled(draw: st.DrawFn, record: dict[str, Any]) -> bytes:
    """The record as a JSON line: any key order, any spacing, the time in any offset."""
    record = dict(record)
    record["time"] = spell_time(
        dt.datetime.fromisoformat(record["time"]), draw(st.sampled_from(OFFSETS))
    )
    if (
        record.get("record", "usage") == "usage"
        and "input_tokens" in record
        and "cache_write_tokens" not in record
        and draw(st.integers(0, 3)) == 0
    ):
        record = _as_responses_usage(record)  # the same buckets, from a usage object
    keys = draw(st.permutations(list(record)))
    separators = draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :  ")]))
    return json.dumps(
        {k: record[k] for k in keys}, separators=separators, ensure_ascii=False
    ).encode()


def _as_responses_usage(record: dict[str, Any]) -> dict[str, Any]:
    record = dict(record)
    usage = {
        "input_tokens": record.pop("input_tokens"),
        "output_tokens": record.pop("output_tokens"),
        "input_tokens_details": {"cached_tokens": record.pop("cache_read_tokens", 0)},
        "output_tokens_details": {"reasoning_tokens": record.pop("reasoning_tokens", 0)},
    }
    return {**record, "usage_format": "openai.responses", "usage": usage}


@st.composite
def conflicting(draw: st.DrawFn, record: dict[str, Any]) -> dict[str, Any]:
    """The same key with one field changed (still a valid record)."""
    record = dict(record)
    kind = record.get("record", "usage")
    choices = {
        "usage": ["customer", "time", "attributes"]
        + (["output_tokens"] if "output_tokens" in record else [])
        + (["cost"] if "cost" in record else []),
        "task": ["customer", "type", "time"],
        "outcome": ["customer", "value", "type", "time"],
        "attestation": ["verdict", "time"],
    }[kind]
    name = draw(st.sampled_from(choices))
    if name == "customer":
        record[name] = "globex" if record[name] == "acme" else "acme"
    elif name == "time":
        moment = dt.datetime.fromisoformat(record["time"]) + dt.timedelta(seconds=1)
        record[name] = spell_time(moment, 0)
    elif name == "attributes":
        record[name] = {"step": "changed"}
    elif name == "output_tokens":
        record[name] += 1
    elif name == "cost":
        record[name] = "0.123"
    elif name == "type":
        record[name] = "other.type"
    elif name == "value":
        record[name] = "7.77"
    else:
        record[name] = "reject" if record[name] == "accept" else "accept"
    return record


# -- hostile lines ------------------------------------------------------------------------


def _required(record: dict[str, Any]) -> list[str]:
    kind = record.get("record", "usage")
    if kind == "usage":
        required = ["id", "time", "customer"]
        if record.get("kind", "llm") == "llm":
            required += ["provider", "model"]
            required += ["usage", "usage_format"] if "usage" in record else ["input_tokens"]
        elif record["kind"] == "custom":
            required += ["quantity", "unit"]
        return required
    return {
        "task": ["id", "customer", "status", "time"],
        "outcome": ["id", "task", "customer", "type", "time"],
        "attestation": ["id", "outcome", "verdict", "time"],
    }[kind]


STRING_FIELDS = ("id", "customer", "task", "task_type", "provider", "model", "unit", "type",
                 "outcome", "time", "cost", "value", "evidence_digest")  # fmt: skip
BOOLEAN_FIELDS = ("visible", "batch")
WRONG_FOR_STRING = [12, True, [], {"a": "b"}, 1.5]
WRONG_FOR_COUNT = [True, False, "12", 1.5, 1.0, [], {"n": 1}, None]
WRONG_FOR_BOOLEAN = [1, 0, "true", [], None]


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def _unread_when_too_long(kind: str, line: bytes, intent: Intent) -> tuple[bytes, Intent]:
    """A line longer than a record may be is refused unread: no field can be named."""
    if len(line) > MAX_RECORD_BYTES:
        return line, Malformed(kind, ANY_FIELD)
    return line, intent


@st.composite
def _hostile_from(draw: st.DrawFn, kind: str, record: dict[str, Any]) -> tuple[bytes, Intent]:
    """A line made hostile in the way `kind` names, and what a refusal may name."""
    record = dict(record)

    def refused(*names: str) -> Intent:
        return Malformed(kind, frozenset(names))

    if kind == "missing_field":
        name = draw(st.sampled_from(_required(record)))
        del record[name]
        return _line(record), refused(name)
    if kind == "unknown_field":
        name = draw(st.sampled_from(["colour", "Id", "tokens", "usage_object", "x" * 300]))
        record[name] = draw(st.sampled_from(["red", 1, None, {"a": [1]}]))
        return _line(record), refused(name)
    if kind == "wrong_type":
        return _wrong_type(draw, record, refused)
    if kind == "out_of_bounds":
        return _out_of_bounds(draw, record, refused)
    if kind == "parts_exceed_totals":
        return _parts_exceed(draw, record, refused)
    if kind == "bad_enum":
        return _bad_enum(draw, record, refused)
    if kind == "huge_string":
        name = draw(st.sampled_from(["id", "customer"]))
        record[name] = "x" * draw(st.sampled_from([256, 10_000, 200_000]))
        return _line(record), refused(name)
    if kind == "not_an_object":
        line = draw(st.sampled_from([b"[1, 2]", b'"usage"', b"42", b"null", b"true", b"{}",
                                     b"[" * 3000 + b"]" * 3000]))  # fmt: skip
        return line, Malformed(kind, ANY_FIELD)
    if kind == "truncated":
        line = _line(record)
        return line[: draw(st.integers(1, len(line) - 1))], Malformed(kind, ANY_FIELD)
    if kind == "invalid_utf8":
        name = draw(st.sampled_from(["id", "customer", "time"]))
        line = _line({**record, name: "INVALID"}).replace(b"INVALID", b"\xff\xfe\xc3(")
        return line, Malformed(kind, ANY_FIELD)
    if kind == "deep_nesting":
        return _deep(draw, record, refused)
    if kind == "deep_nesting_in_usage":
        usage = {"prompt_tokens": 1, "completion_tokens": 1, "extra": DEEP}
        record = {**_model_call(record), "usage_format": "openai.chat", "usage": usage}
        return _with_deep(record, _nested(draw)), refused("usage")
    if kind == "usage_count_out_of_bounds":
        return _usage_out_of_bounds(draw, record)
    if kind == "duplicate_keys":
        return _duplicate_keys(draw, record)
    raise AssertionError(f"unknown hostile kind {kind}")


def _model_call(record: dict[str, Any]) -> dict[str, Any]:
    """A model call (provider and model, no tokens yet) with the record's id, time and
    customer, whatever kind of record it was."""
    kept = ("id", "time", "customer", "task", "task_type", "visible", "batch", "attributes")
    call = {name: record[name] for name in kept if name in record and name != "task"}
    if record.get("record", "usage") == "usage" and "task" in record:
        call["task"] = record["task"]
    call.setdefault("id", USAGE_IDS[0])
    call.setdefault("customer", "acme")
    return {**call, "provider": "openai", "model": "gpt-4o"}


DEEP = "__deep__"


def _nested(draw: st.DrawFn) -> bytes:
    """A JSON value nested thousands deep, as text."""
    depth = draw(st.sampled_from([3_000, 20_000]))
    if draw(st.booleans()):
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


def _with_deep(record: dict[str, Any], nested: bytes) -> bytes:
    """The record as a line, with `nested` where the record holds the DEEP marker."""
    return _line(record).replace(json.dumps(DEEP).encode(), nested)


def _wrong_type(draw: st.DrawFn, record: dict[str, Any], refused: Any) -> tuple[bytes, Intent]:
    if record.get("record", "usage") == "usage" and draw(st.booleans()):
        if "usage" in record and record["usage_format"] == "openai.chat" and draw(st.booleans()):
            # Inside a provider's usage object: a boolean or a string is not a count.
            record["usage"] = {**record["usage"], "prompt_tokens": draw(st.sampled_from(
                [True, "12", 1.5, [3], -1]))}  # fmt: skip
            return _line(record), refused("usage", "input_tokens")
        name = draw(st.sampled_from([*BOOLEAN_FIELDS, "input_tokens", "output_tokens"]))
        if name in BOOLEAN_FIELDS:
            record[name] = draw(st.sampled_from(WRONG_FOR_BOOLEAN))
            if record[name] is None:
                record[name] = 1
        else:
            record = {**_model_call(record), "input_tokens": 5, "output_tokens": 5}
            record[name] = draw(st.sampled_from([v for v in WRONG_FOR_COUNT if v is not None]))
        return _line(record), refused(name)
    name = draw(st.sampled_from([n for n in STRING_FIELDS if n in record]))
    record[name] = draw(st.sampled_from(WRONG_FOR_STRING))
    return _line(record), refused(name)


def _out_of_bounds(draw: st.DrawFn, record: dict[str, Any], refused: Any) -> tuple[bytes, Intent]:
    kind = record.get("record", "usage")
    choices = [
        "time",
        *{
            "usage": ["count", "cost", "quantity", "attributes"],
            "outcome": ["value", "evidence_digest"],
        }.get(kind, []),
    ]
    target = draw(st.sampled_from(choices))
    if target == "time":
        record["time"] = draw(st.sampled_from([
            "1969-12-31T23:59:59Z", "9000-01-01T00:00:00Z", "8999-12-31T23:00:00-05:00",
            "10000-01-01T00:00:00Z", "2026-11-03T10:00:00", "2026-13-03T10:00:00Z",
            "2026-11-03 10:00", ""]))  # fmt: skip
        return _line(record), refused("time")
    if target == "count":
        record = {**_model_call(record), "input_tokens": 5, "output_tokens": 5}
        name = draw(st.sampled_from(TOKEN_FIELDS))
        record[name] = draw(st.sampled_from([MAX_TOKENS + 1, 2**63, 2**64, 10**30, -1]))
        return _line(record), refused(name, "input_tokens", "output_tokens")
    if target in ("cost", "quantity"):
        record["kind"] = "custom"
        record.setdefault("quantity", "1")
        record.setdefault("unit", "page")
        for name in ("provider", "model", "usage", "usage_format", *TOKEN_FIELDS):
            record.pop(name, None)
        bad = {
            "cost": ["1000000000", "0.0000000001", "1e3", "-1", " 1", "1_0", "0x10", "", "\u0661"],
            "quantity": ["1e16", "-1", "NaN", "Infinity", 10**16, "0.0000000000000000001",
                         -0.5],
        }[target]  # fmt: skip
        record[target] = draw(st.sampled_from(bad))
        return _line(record), refused(target)
    if target == "attributes":
        record["attributes"] = {f"k{i}": "v" for i in range(65)}
        return _line(record), refused("attributes")
    if target == "value":
        record["value"] = draw(
            st.sampled_from(["-1", "1e3", "1234567890123456", "0.1234567890123456789"])
        )
        return _line(record), refused("value")
    record["evidence_digest"] = "sha256:" + "a" * 600
    return _line(record), refused("evidence_digest")


def _parts_exceed(draw: st.DrawFn, record: dict[str, Any], refused: Any) -> tuple[bytes, Intent]:
    record = _model_call(record)
    if draw(st.booleans()):
        record.update(input_tokens=10, output_tokens=10)
        part = draw(
            st.sampled_from(["cache_read_tokens", "cache_write_tokens", "reasoning_tokens"])
        )
        record[part] = 11
        return _line(record), refused(
            "reasoning_tokens" if part == "reasoning_tokens" else "input_tokens"
        )
    if draw(st.booleans()):
        record.update(usage_format="openai.chat", usage={
            "prompt_tokens": 10, "completion_tokens": 10,
            "prompt_tokens_details": {"cached_tokens": 11}})  # fmt: skip
        return _line(record), refused("input_tokens", "usage")
    # A usage object and token fields together: one or the other.
    record.update(usage_format="anthropic", usage={"input_tokens": 1, "output_tokens": 1},
                  output_tokens=1)  # fmt: skip
    return _line(record), refused("output_tokens")


def _bad_enum(draw: st.DrawFn, record: dict[str, Any], refused: Any) -> tuple[bytes, Intent]:
    kind = record.get("record", "usage")
    name, values = {
        "usage": ("kind", ["gpu", "LLM", ""]),
        "task": ("status", ["done", "OPEN", ""]),
        "outcome": ("record", ["outcomes", "Outcome"]),
        "attestation": ("verdict", ["maybe", "ACCEPT", "approve"]),
    }[kind]
    if kind == "usage" and "usage_format" in record and draw(st.booleans()):
        name, values = "usage_format", ["mistral", "openai", "Gemini"]
    record[name] = draw(st.sampled_from(values))
    return _line(record), refused(name)


def _deep(draw: st.DrawFn, record: dict[str, Any], refused: Any) -> tuple[bytes, Intent]:
    where = draw(st.sampled_from(["attributes", "unknown", "id"]))
    if where == "attributes":
        record["attributes"] = {"tool": DEEP}
    else:
        record["deep" if where == "unknown" else "id"] = DEEP
    name = "deep" if where == "unknown" else where
    return _with_deep(record, _nested(draw)), refused(name)


def _usage_out_of_bounds(draw: st.DrawFn, record: dict[str, Any]) -> tuple[bytes, Intent]:
    """A count inside a provider's usage object beyond 10^10, alone or as a sum of parts."""
    record = _model_call(record)
    huge = draw(st.sampled_from([MAX_TOKENS + 1, 2**63, 2**64, 10**30]))
    usage_format, usage = draw(st.sampled_from([
        ("openai.chat", {"prompt_tokens": huge, "completion_tokens": 1}),
        ("openai.chat", {"prompt_tokens": 5, "completion_tokens": huge,
                         "completion_tokens_details": {"reasoning_tokens": huge}}),
        ("openai.responses", {"input_tokens": 1, "output_tokens": huge}),
        ("gemini", {"promptTokenCount": huge, "candidatesTokenCount": 1}),
        ("anthropic", {"input_tokens": 1, "cache_read_input_tokens": huge, "output_tokens": 1}),
        # Each part within the bound, the total input beyond it.
        ("anthropic", {"input_tokens": MAX_TOKENS, "cache_creation_input_tokens": MAX_TOKENS,
                       "output_tokens": 1}),
        ("gemini", {"promptTokenCount": MAX_TOKENS, "toolUsePromptTokenCount": 1,
                    "candidatesTokenCount": 1}),
    ]))  # fmt: skip
    record.update(usage_format=usage_format, usage=usage)
    return _line(record), Malformed(
        "usage_count_out_of_bounds", frozenset({"usage", "input_tokens", "output_tokens"})
    )


def _duplicate_keys(draw: st.DrawFn, record: dict[str, Any]) -> tuple[bytes, Intent]:
    """The same key twice in one object: which value counts is ambiguous, so it is refused."""
    name = draw(st.sampled_from(list(record)))
    again = draw(st.sampled_from([record[name], "other", 7]))
    line = _line(record)
    assert line.endswith(b"}")
    line = line[:-1] + b", " + json.dumps(name).encode() + b": " + json.dumps(again).encode() + b"}"
    return line, Malformed("duplicate_keys", frozenset({name}))


# -- streams ------------------------------------------------------------------------------

Line = tuple[bytes, Intent]


class Stream(list[Line]):
    """A generated stream; shown short when hypothesis reports it (the reproducer a test
    prints shows the lines)."""

    def __repr__(self) -> str:
        return f"<stream of {len(self)} lines>"


@st.composite
def streams(
    draw: st.DrawFn, hostile: tuple[str, ...], *, required: str | None = None, max_lines: int = 40
) -> Stream:
    """A stream of lines: valid records, duplicates, conflicts and lines made hostile in the
    `hostile` ways; with `required`, at least one line made hostile that way."""
    max_cost = "max_cost" in hostile
    lines: list[Line] = []
    sent: list[dict[str, Any]] = []
    count = draw(st.integers(1, max_lines))
    forced = draw(st.integers(0, count - 1)) if required else None
    for number in range(count):
        choices = ["valid"] * 5 + ["duplicate", "conflict"] + (["hostile"] * 3 if hostile else [])
        choice = "hostile" if number == forced else draw(st.sampled_from(choices))
        if choice in ("duplicate", "conflict") and not sent:
            choice = "valid"
        if choice == "valid":
            record = draw(valid_records(max_cost=max_cost))
        elif choice == "duplicate":
            record = draw(st.sampled_from(sent))
        elif choice == "conflict":
            record = draw(conflicting(draw(st.sampled_from(sent))))
        else:
            kind = required if number == forced else draw(st.sampled_from(hostile))
            if kind == "max_cost":
                lines.extend(_max_cost_task(draw))
                continue
            base = draw(valid_records())
            lines.append(_unread_when_too_long(kind, *draw(_hostile_from(kind, base))))
            continue
        sent.append(record)
        lines.append((draw(spelled(record)), content_of(record)))
    return Stream(lines)


def _max_cost_task(draw: st.DrawFn) -> list[Line]:
    """Ten steps of one task at the largest cost a record may carry: the sums must hold."""
    task, customer = draw(st.sampled_from(TASK_IDS)), draw(st.sampled_from(CUSTOMERS))
    lines = []
    for number in range(10):
        record = {"id": f"{PREFIX}max{task[len(PREFIX):]}-{number}", "customer": customer,
                  "time": spell_time(CLAIM_TIMES[0], 0), "task": task, "kind": "tool",
                  "cost": MAX_COST}  # fmt: skip
        lines.append((_line(record), content_of(record)))
    return lines
