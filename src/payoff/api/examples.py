"""Request examples for the main routes, shown on `/docs` through the OpenAPI document.

Each is a body the server accepts as written (tests/test_docs_deploy.py sends every one),
so a reader can copy it into curl and see it work.
"""

from __future__ import annotations

import json
from typing import Any

USAGE = [
    {
        "id": "evt_0001", "time": "2026-11-03T10:00:00Z", "customer": "acme",
        "task": "ticket-4411", "task_type": "support.ticket", "provider": "openai",
        "model": "gpt-4o", "input_tokens": 1200, "output_tokens": 300,
    },
    {
        "id": "evt_0002", "time": "2026-11-03T10:00:04Z", "customer": "acme",
        "task": "ticket-4411", "task_type": "support.ticket", "provider": "openai",
        "model": "gpt-4o", "input_tokens": 1900, "output_tokens": 120, "visible": True,
    },
]  # fmt: skip


def _one(summary: str, value: Any, description: str = "") -> dict[str, Any]:
    example = {"summary": summary, "value": value}
    return example | ({"description": description} if description else {})


def _attribute(key: str, value: str | int) -> dict[str, Any]:
    kind = "intValue" if isinstance(value, int) else "stringValue"
    return {"key": key, "value": {kind: str(value) if kind == "intValue" else value}}


EVENTS: dict[str, Any] = {
    "application/json": {
        "examples": {"array": _one("Two steps of one task, as a JSON array", USAGE)}
    },
    "application/x-ndjson": {
        "examples": {
            "json_lines": _one(
                "The same steps as JSON Lines: one record per line",
                "".join(json.dumps(record) + "\n" for record in USAGE),
            )
        }
    },
}

SPAN = {
    "traceId": "5b8efff798038103d269b633813fc60c",
    "spanId": "eee19b7ec3c1b174",
    "name": "chat gpt-4o",
    "kind": 3,
    "startTimeUnixNano": "1793786400000000000",
    "endTimeUnixNano": "1793786401500000000",
    "attributes": [
        _attribute("gen_ai.operation.name", "chat"),
        _attribute("gen_ai.provider.name", "openai"),
        _attribute("gen_ai.request.model", "gpt-4o"),
        _attribute("gen_ai.usage.input_tokens", 1200),
        _attribute("gen_ai.usage.output_tokens", 300),
    ],
}
TRACES: dict[str, Any] = {
    "application/json": {
        "examples": {
            "genai_span": _one(
                "One GenAI span as OTLP/JSON (exporters usually send protobuf)",
                {
                    "resourceSpans": [
                        {
                            "resource": {"attributes": [_attribute("payoff.customer", "acme")]},
                            "scopeSpans": [{"spans": [SPAN]}],
                        }
                    ]
                },
            )
        }
    }
}

ATTESTATION_RECORD = {
    "record": "attestation",
    "id": "att_77",
    "outcome": "out_551",
    "verdict": "accept",
    "time": "2026-11-04T08:00:00Z",
}
ATTESTATION: dict[str, Any] = {
    "application/json": {
        "examples": {
            "accept": _one(
                "A customer accepts an outcome",
                ATTESTATION_RECORD,
                "Sent with the header `payoff-signature: t=<unix seconds>,v1=<hex>`, where "
                'hex is HMAC-SHA256 of "<t>.<raw body>" under the customer\'s webhook secret '
                "(`payoff customers secret ID`), e.g. in Python: "
                "hmac.new(secret.encode(), f\"{t}.\".encode() + body, 'sha256').hexdigest(). "
                "The timestamp and the verdict's `time` must be within 300 s of the server's "
                "clock and of each other.",
            )
        }
    }
}

INVOICE_RUN: dict[str, Any] = {
    "application/json": {
        "examples": {
            "month": _one(
                "Draft every customer's invoice for November 2026", {"period": "2026-11"}
            ),
            "one_customer": _one(
                "One customer, as the ledger stood at a given time",
                {"period": "2026-11", "customer": "acme", "as_of": "2026-12-01T06:00:00Z"},
            ),
        }
    }
}
