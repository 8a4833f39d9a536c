"""Builders for test inputs, one copy each: records v1 and a plan.

Every builder returns a valid value with the same defaults everywhere; a test overrides only
the fields it is about. Test modules import this module by name (`from factories import
usage`): pyproject puts tests/ on the path, for `pytest` and `python -m pytest` alike.
Provider SDK responses are built in sdk_support.py (it imports the provider SDKs).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parents[1]
NOV_3 = "2026-11-03T10:00:00Z"
NOV_3_US = int(dt.datetime(2026, 11, 3, 10, tzinfo=dt.UTC).timestamp()) * 10**6

# A plan with one outcome charge that the customer verifies.
OUTCOME_PLAN = """id: outcomes
version: 1
currency: USD
charges:
  - name: resolved
    type: outcome
    outcome: ticket.resolved
    model: per_unit
    unit_price: "1.00"
    verification: customer
    accept_after_days: 7
    warranty_days: 90
"""


def _without_none(record: dict[str, Any]) -> dict[str, Any]:
    """A field given as None is left out, so a test can drop a default."""
    return {k: v for k, v in record.items() if v is not None}


# --- records v1 ------------------------------------------------------------------------------


def usage(id: str, **fields: Any) -> dict[str, Any]:
    """A valid usage record with sensible defaults, overridden by `fields`."""
    record: dict[str, Any] = {
        "id": id,
        "time": NOV_3,
        "customer": "acme",
        "provider": "openai",
        "model": "gpt-4o",
        "input_tokens": 1200,
        "output_tokens": 300,
    }
    record.update(fields)
    return _without_none(record)


def tool_usage(id: str, **fields: Any) -> dict[str, Any]:
    """A tool step with an explicit cost (no model, no tokens)."""
    record: dict[str, Any] = {
        "id": id,
        "time": NOV_3,
        "customer": "acme",
        "kind": "tool",
        "cost": "0.010",
    }
    record.update(fields)
    return _without_none(record)


def task(
    id: str, status: str, time: str = NOV_3, customer: str = "acme", **extra: Any
) -> dict[str, Any]:
    """A task record: a status at a moment."""
    record: dict[str, Any] = {
        "record": "task",
        "id": id,
        "customer": customer,
        "status": status,
        "time": time,
        **extra,
    }
    return record


def outcome(id: str, task: str, customer: str = "acme", **fields: Any) -> dict[str, Any]:
    """An outcome claim of type ticket.resolved (the type OUTCOME_PLAN charges for)."""
    record: dict[str, Any] = {
        "record": "outcome",
        "id": id,
        "task": task,
        "customer": customer,
        "type": "ticket.resolved",
        "value": "120.00",
        "time": NOV_3,
    }
    record.update(fields)
    return _without_none(record)


def attestation(id: str, outcome: str, verdict: str, time: str = NOV_3) -> dict[str, Any]:
    """A verdict on an outcome."""
    return {"record": "attestation", "id": id, "outcome": outcome, "verdict": verdict, "time": time}


def jsonl(*records: dict[str, Any] | bytes) -> bytes:
    """Records (or raw lines) as a JSON Lines body."""
    return b"".join(
        (r if isinstance(r, bytes) else msgspec.json.encode(r)) + b"\n" for r in records
    )


def signal(id: str, name: str, time: str = NOV_3, **about: Any) -> dict[str, Any]:
    """A signal about a task or an outcome (`task=`, `outcome=`, `attributes=`)."""
    return _without_none({"record": "signal", "id": id, "name": name, "time": time, **about})
