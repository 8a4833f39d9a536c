"""Realistic record streams: agents at work, their records as they would send them.

Each task is one agent run: an `open` status, two to six steps (model calls in every
provider's usage format and as plain token fields, tool calls, custom units), an end
status, and for most completed tasks an outcome claim, which the customer accepts about
half the time. Ids are random UUIDs (and provider-style response ids for model calls),
drawn from a seeded generator, so that a seed reproduces a stream exactly.

A record's *key* is what makes it unique in the ledger: its kind and id, and for a task
record its status too (docs/records.md).
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Iterator
from typing import Any

Record = dict[str, Any]
Key = tuple[str, ...]

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
CUSTOMERS = ("acme", "globex", "initech", "umbrella")
TASK_TYPES = ("support.ticket", "coding.change", "research.report")
TOOLS = (("kb_search", "0.0004"), ("crm_lookup", "0.0010"), ("web_search", "0.005"))
RECORD_KINDS = ("usage", "task", "outcome", "attestation")


def record_key(record: Record) -> Key:
    """The ledger's unique key of a record: (kind, id), and the status of a task record."""
    kind = record.get("record", "usage")
    if kind == "task":
        return (kind, record["id"], record["status"])
    return (kind, record["id"])


def random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- model calls in each provider's own usage shape ---------------------------------------


def _openai_chat(rng: random.Random) -> Record:
    prompt, completion = rng.randint(200, 9_000), rng.randint(20, 2_000)
    reasoning = rng.choice((0, 0, rng.randint(0, completion)))
    return {
        "id": f"chatcmpl-{rng.getrandbits(120):030x}",
        "provider": "openai",
        "model": rng.choice(("gpt-4.1-mini", "gpt-4o", "o4-mini")),
        "usage_format": "openai.chat",
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": rng.randint(0, prompt)},
            "completion_tokens_details": {"reasoning_tokens": reasoning},
        },
    }


def _openai_responses(rng: random.Random) -> Record:
    given, output = rng.randint(200, 9_000), rng.randint(20, 2_000)
    return {
        "id": f"resp_{rng.getrandbits(192):048x}",
        "provider": "openai",
        "model": rng.choice(("gpt-4o", "gpt-4.1")),
        "usage_format": "openai.responses",
        "usage": {
            "input_tokens": given,
            "input_tokens_details": {"cached_tokens": rng.randint(0, given)},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": rng.randint(0, output // 2)},
            "total_tokens": given + output,
        },
    }


def _anthropic(rng: random.Random) -> Record:
    return {
        "id": f"msg_01{rng.getrandbits(120):030x}",
        "provider": "anthropic",
        "model": rng.choice(("claude-sonnet-4-5", "claude-haiku-4-5")),
        "usage_format": "anthropic",
        "usage": {
            "input_tokens": rng.randint(50, 3_000),
            "cache_creation_input_tokens": rng.choice((0, rng.randint(0, 4_000))),
            "cache_read_input_tokens": rng.choice((0, rng.randint(0, 8_000))),
            "output_tokens": rng.randint(20, 3_000),
            "service_tier": "standard",
        },
    }


def _gemini(rng: random.Random) -> Record:
    prompt = rng.randint(300, 12_000)
    usage = {
        "promptTokenCount": prompt,
        "cachedContentTokenCount": rng.choice((0, rng.randint(0, prompt))),
        "candidatesTokenCount": rng.randint(20, 1_500),
        "thoughtsTokenCount": rng.randint(0, 2_000),
    }
    if rng.random() < 0.3:
        usage["toolUsePromptTokenCount"] = rng.randint(0, 800)
    if rng.random() < 0.3:  # the Python SDK's spelling
        usage = {_snake(name): count for name, count in usage.items()}
    return {
        "id": random_uuid(rng),
        "provider": "google",
        "model": rng.choice(("gemini-2.5-pro", "gemini-2.5-flash")),
        "usage_format": "gemini",
        "usage": usage,
    }


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _token_fields(rng: random.Random) -> Record:
    given, output = rng.randint(100, 10_000), rng.randint(10, 2_000)
    record: Record = {
        "id": random_uuid(rng),
        "provider": rng.choice(("openai", "anthropic", "google")),
        "input_tokens": given,
        "output_tokens": output,
    }
    record["model"] = {
        "openai": "gpt-4o-mini",
        "anthropic": "claude-sonnet-4-5",
        "google": "gemini-2.5-flash",
    }[record["provider"]]
    if rng.random() < 0.5:
        record["cache_read_tokens"] = rng.randint(0, given)
    if rng.random() < 0.3:
        record["reasoning_tokens"] = rng.randint(0, output)
    if rng.random() < 0.1:
        record["batch"] = True
    return record


def _tool(rng: random.Random) -> Record:
    tool, cost = rng.choice(TOOLS)
    return {"id": random_uuid(rng), "kind": "tool", "cost": cost, "attributes": {"tool": tool}}


def _custom(rng: random.Random) -> Record:
    pages = rng.randint(1, 40)
    return {
        "id": random_uuid(rng),
        "kind": "custom",
        "quantity": str(pages),
        "unit": "page",
        "cost": f"0.{pages * 2:04d}",
        "attributes": {"tool": "fetch_page"},
    }


MODEL_CALLS = (_openai_chat, _openai_responses, _anthropic, _gemini, _token_fields)
STEPS = (*MODEL_CALLS, _tool, _custom)


# -- agents at work -----------------------------------------------------------------------


def agent_run(rng: random.Random, moment: dt.datetime, *, verdicts: bool = True) -> list[Record]:
    """The records of one task, in the order an agent sends them.

    Every record of a task names the same customer and type, so that the ledger a stream
    makes does not depend on the order its batches arrive in.
    """
    task, customer, task_type = random_uuid(rng), rng.choice(CUSTOMERS), rng.choice(TASK_TYPES)
    common = {"customer": customer}

    def status(name: str) -> Record:
        return {"record": "task", "id": task, **common, "type": task_type, "status": name,
                "time": iso(moment)}  # fmt: skip

    records = [status("open")]
    steps = rng.randint(2, 6)
    for number in range(steps):
        moment += dt.timedelta(milliseconds=rng.randint(200, 20_000))
        step = rng.choice(MODEL_CALLS if number == steps - 1 else STEPS)(rng)
        step.update(common, task=task, task_type=task_type, time=iso(moment))
        if number == steps - 1 and "provider" in step:
            step["visible"] = True  # the answer
        records.append(step)
    moment += dt.timedelta(milliseconds=rng.randint(50, 900))
    ended = rng.choices(("completed", "failed", "abandoned"), (8, 1, 1))[0]
    records.append(status(ended))
    if ended == "completed" and rng.random() < 0.7:
        outcome = random_uuid(rng)
        records.append(
            {
                "record": "outcome",
                "id": outcome,
                "task": task,
                **common,
                "type": "ticket.resolved",
                "value": f"{rng.randint(5, 400)}.00",
                "time": iso(moment),
                "evidence_digest": f"sha256:{rng.getrandbits(256):064x}",
            }
        )
        if verdicts and rng.random() < 0.5:
            records.append(
                {
                    "record": "attestation",
                    "id": random_uuid(rng),
                    "outcome": outcome,
                    "verdict": "accept",
                    "time": iso(moment + dt.timedelta(hours=5)),
                }
            )
    return records


def agent_runs(rng: random.Random, *, verdicts: bool = True) -> Iterator[list[Record]]:
    """Task after task, spread over November, without end."""
    while True:
        moment = START + dt.timedelta(seconds=rng.randint(0, 29 * 86_400))
        yield agent_run(rng, moment, verdicts=verdicts)


def records_of(rng: random.Random, count: int, *, verdicts: bool = True) -> list[Record]:
    """At least `count` records of whole tasks."""
    records: list[Record] = []
    runs = agent_runs(rng, verdicts=verdicts)
    while len(records) < count:
        records.extend(next(runs))
    return records
