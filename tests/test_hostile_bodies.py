"""Hostile request bodies to every write endpoint: the server answers each, never with 5xx.

Bodies: deep nesting (top level and under each field name the API reads), integers no
column can hold, duplicate keys, booleans where numbers go, invalid UTF-8, random bytes,
strings up to the body limit, NaN and Infinity, and gzip bodies (valid, broken, and a bomb
that inflates past the limit). Each goes to every POST route with an admin key (a key that
may do anything reaches the deepest code), in the content types the route reads. A refusal
is a 4xx whose detail does not quote an exception.
"""

from __future__ import annotations

import functools
import gzip
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from api_support import Keys, prepare_ledger
from fuzz_support import LEAKED
from payoff.api import ServerConfig, create_app
from reliability import Tally, size

# Each example is one request to an app with its writer thread running.
pytestmark = pytest.mark.slow

ROUTES = [
    ("/v1/events", ["application/json", "application/x-ndjson"]),
    ("/v1/traces", ["application/json", "application/x-protobuf"]),
    ("/v1/attestations", ["application/json"]),
    ("/v1/outcomes/o1/verify", ["application/json"]),
    ("/v1/customers", ["application/json"]),
    ("/v1/customers/acme/secret", ["application/json"]),
    ("/v1/plans", ["application/yaml", "application/json"]),
    ("/v1/subscriptions", ["application/json"]),
    ("/v1/subscriptions/end", ["application/json"]),
    ("/v1/invoice-runs", ["application/json"]),
    ("/v1/invoices/acme-2026-11/finalize", ["application/json"]),
    ("/v1/keys", ["application/json"]),
]
FIELDS = [
    *("usage", "attributes", "record", "id", "name", "customer", "period", "plan", "from"),
    *("scope", "by", "reason", "charges", "resourceSpans", "overlap_seconds", "as_of"),
]
LIMIT = 65_536
"""The smallest body limit of a route: bodies stay under it to reach the route's code."""


class Body(NamedTuple):
    """A request body and the headers it needs; shown short when hypothesis reports it."""

    content: bytes
    headers: dict[str, str] = {}  # noqa: RUF012 (never changed: a NamedTuple default)

    def __repr__(self) -> str:
        return f"<body of {len(self.content):,} bytes>"


def _deep(depth: int, kind: str) -> bytes:
    if kind == "array":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


@st.composite
def deep_bodies(draw: st.DrawFn) -> Body:
    """JSON nested thousands deep: the whole body, or under a field a route reads."""
    depth = draw(st.sampled_from([1_000, 5_000, 20_000]))
    value = _deep(depth, draw(st.sampled_from(["array", "object"])))
    where = draw(st.sampled_from(["top", "usage", *FIELDS]))
    if where == "top":
        return Body(value)
    kind = draw(st.sampled_from([b"", b'"record": "usage", ', b'"record": "attestation", ']))
    return Body(b"{" + kind + b'"' + where.encode() + b'": ' + value + b"}")


@functools.cache
def gzip_bomb() -> bytes:
    """200 MiB of JSON once inflated, 200 KiB as sent."""
    return gzip.compress(b"[" + b" " * (200 * 1024 * 1024) + b"]")


json_leaves = st.one_of(
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, True, False, None, 1.5, -0.0]),
    st.text(max_size=20),
    st.integers(),
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=5)
    ),
    max_leaves=20,
)


ODD_KINDS = [
    *("json", "duplicate keys", "invalid utf-8", "bytes", "long string", "nan"),
    *("gzip", "broken gzip", "gzip bomb"),
]


@st.composite
def odd_bodies(draw: st.DrawFn) -> Body:
    """A hostile body that is not deep, and any headers it needs."""
    kind = draw(st.sampled_from(ODD_KINDS))
    gzip_header = {"content-encoding": "gzip"}
    if kind == "json":
        return Body(json.dumps(draw(json_values)).encode())
    if kind == "duplicate keys":
        name = draw(st.sampled_from(FIELDS)).encode()
        return Body(b'{"' + name + b'": "a", "' + name + b'": 2, "id": 1}')
    if kind == "invalid utf-8":
        return Body(b'{"id": "\xff\xfe", "name": "\xc3("}')
    if kind == "bytes":
        return Body(draw(st.binary(min_size=1, max_size=2_000)))
    if kind == "long string":
        return Body(json.dumps({draw(st.sampled_from(FIELDS)): "x" * (LIMIT - 100)}).encode())
    if kind == "nan":
        return Body(b'{"overlap_seconds": NaN, "id": Infinity, "usage": -Infinity}')
    if kind == "gzip":
        return Body(gzip.compress(json.dumps(draw(json_values)).encode()), gzip_header)
    if kind == "broken gzip":
        return Body(gzip.compress(b'{"id": "x"}')[:-6], gzip_header)
    return Body(gzip_bomb(), gzip_header)


@pytest.fixture(scope="module")
def api() -> Iterator[tuple[TestClient, Keys]]:
    with tempfile.TemporaryDirectory(prefix="payoff-bodies-") as folder:
        db = Path(folder) / "l.db"
        keys = prepare_ledger(db)
        # A 500 must come back as an answer, to be counted, not raised inside the test.
        app = create_app(ServerConfig(str(db), max_body_bytes=LIMIT, builders=0))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield client, keys


def _answer_problems(response: Any) -> list[str]:
    status = response.status_code
    if status >= 500 and not (status == 503 and "retry-after" in response.headers):
        return [f"answered {status}: {response.text[:300]}"]
    if status >= 400 and LEAKED.search(response.text):
        return [f"the {status} quotes an exception: {response.text[:300]}"]
    return []


Route = tuple[str, list[str]]


def _probe(
    api: tuple[TestClient, Keys],
    tally: Tally,
    bodies: st.SearchStrategy[Body],
    explicit: list[tuple[Route, Body]],
) -> None:
    """Send drawn bodies (and the `explicit` ones first), each to a route; count the
    answers that are 5xx or quote an exception."""
    client, keys = api

    def run(route: Route, body: Body, pick: int) -> None:
        content, headers = body
        content_type = route[1][pick % len(route[1])]
        headers = {**keys.header(keys.admin), "content-type": content_type, **headers}
        response = client.post(route[0], content=content, headers=headers)
        problems = [f"POST {route[0]}: {p}" for p in _answer_problems(response)]
        shown = content[:300] + (b"..." if len(content) > 300 else b"")
        tally.example(1, problems, lambda: (problems, f"{content_type} {headers.keys()} {shown!r}"))

    test = given(st.sampled_from(ROUTES), bodies, st.integers(0, 1))(run)
    for route, body in explicit:
        test = example(route, body, 0)(test)
    settings(
        max_examples=size("HOSTILE_BODY_EXAMPLES"),
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )(test)()


ATTESTATIONS = ROUTES[2]
FINDINGS = [
    # A usage object thousands deep, in the one record /v1/attestations reads.
    (ATTESTATIONS, Body(b'{"usage": ' + _deep(5_000, "object") + b"}")),
    # NaN where the schema wants a string: the 422 echoing it must encode.
    (ROUTES[4], Body(b'{"id": NaN}')),
]


def test_odd_bodies_are_answered_without_5xx(api: tuple[TestClient, Keys]) -> None:
    tally = Tally("hostile bodies: odd")
    _probe(api, tally, odd_bodies(), FINDINGS[1:])
    tally.close("every hostile request body is answered 4xx or 2xx, never 5xx")


def test_deep_bodies_are_refused_without_5xx(api: tuple[TestClient, Keys]) -> None:
    tally = Tally("hostile bodies: deep JSON")
    _probe(api, tally, deep_bodies(), FINDINGS[:1])
    tally.close("a body nested thousands deep is refused (400/422), never 5xx")
