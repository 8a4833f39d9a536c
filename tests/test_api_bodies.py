"""Request bodies in-process: the key before the body, compressed bodies within the bound,
and a body that does not arrive in time. The live forms (memory, slow clients, other
clients served throughout) are in test_server_guards.py."""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from fastapi.testclient import TestClient

from api_support import Keys, prepare_ledger, usage
from payoff.api import ServerConfig, create_app
from payoff.api.errors import KeyRefused
from payoff.api.guards import REFUSED_DRAIN_S, RequestGuard
from payoff.service.access import Principal


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return prepare_ledger(tmp_path / "l.db")


@pytest.fixture
def client(tmp_path: Path, keys: Keys) -> Iterator[TestClient]:
    config = ServerConfig(str(tmp_path / "l.db"), max_records=5, max_body_bytes=4096, builders=0)
    with TestClient(create_app(config)) as test_client:
        yield test_client


def records(*ids: str) -> bytes:
    return msgspec.json.encode([usage(i) for i in ids])


def deflate(data: bytes, *, raw: bool = False) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS if raw else zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize("key", [None, "pyk_unknown"])
def test_a_body_without_a_valid_key_is_refused_before_any_route_reads_it(
    client: TestClient, key: str | None
) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    for path in ("/v1/events", "/v1/plans", "/v1/keys", "/v1/nowhere"):
        answer = client.post(path, content=b"x" * 4000, headers=headers)
        assert answer.status_code == 401, (path, answer.text)
        assert "connection" not in answer.headers  # drained, not kept: the connection stays
        assert answer.headers["www-authenticate"] == "Bearer"
        assert answer.json()["detail"] in (
            "missing bearer key: send `Authorization: Bearer <key>`",
            "unknown or revoked key",
        )


def test_a_body_beyond_the_bound_is_413_and_closes_the_connection(client, keys) -> None:
    for key in (keys.ingest, "pyk_unknown"):  # before the key: a declared size costs nothing
        answer = client.post("/v1/events", content=b" " * 5000, headers=keys.header(key))
        assert answer.status_code == 413
        assert answer.headers["connection"] == "close"
        assert answer.json() == {"detail": "body of 5000 bytes; at most 4096 accepted"}


def test_a_key_checked_before_the_body_still_gets_its_scope_checked(client, keys) -> None:
    refused = client.post("/v1/plans", content=b"id: x", headers=keys.header(keys.ingest))
    assert refused.status_code == 403
    sent = client.post("/v1/events", content=records("k1"), headers=keys.header(keys.acme))
    assert sent.status_code == 403


def test_deflate_bodies_are_inflated_zlib_wrapped_or_raw(client, keys) -> None:
    headers = {**keys.header(keys.ingest), "Content-Encoding": "deflate"}
    for number, raw in enumerate((False, True)):
        body = deflate(records(f"d{number}a", f"d{number}b"), raw=raw)
        answer = client.post("/v1/events", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 2


def test_deflate_bodies_keep_the_bound_once_inflated(client, keys) -> None:
    headers = {**keys.header(keys.ingest), "Content-Encoding": "deflate"}
    bomb = deflate(b"[" + b" " * 1_000_000 + b"]")
    assert len(bomb) < 4096
    answer = client.post("/v1/events", content=bomb, headers=headers)
    assert (answer.status_code, answer.json()) == (
        413,
        {"detail": "body inflates beyond 4096 bytes, the most accepted"},
    )
    broken = [b"not deflate at all", deflate(records("t1"))[:-4], deflate(b"[]") + b"more"]
    for body in broken:
        answer = client.post("/v1/events", content=body, headers=headers)
        assert answer.status_code == 400, answer.text
        assert answer.json()["detail"].startswith("body is not valid deflate")


def test_a_body_that_does_not_arrive_in_time_is_408_and_closes_the_connection() -> None:
    """The guard alone, fed by a client that sends its headers and then nothing."""
    reached: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope)

    guard = RequestGuard(
        app,
        authenticate=lambda header: Principal("k1", "ingest"),
        authorize=lambda scope, caller: None,
        limit_for=lambda path: 1024,
        body_timeout_s=0.2,
    )
    sent: list[dict[str, Any]] = []

    async def stalled() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "headers": [(b"content-length", b"100"), (b"authorization", b"Bearer k")],
    }
    asyncio.run(asyncio.wait_for(guard(scope, stalled, send), 10))
    assert reached == []
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert msgspec.json.decode(sent[1]["body"]) == {
        "detail": "the body did not arrive within 0.2 s"
    }


def test_a_keyless_body_trickling_in_is_answered_401_and_closed_within_the_drain_bound() -> None:
    """A client with no valid key sending its body slowly holds its connection for the
    drain bound at most, however long the body timeout (60 s here)."""
    reached: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope)

    def refuse(header: str) -> Principal:
        raise KeyRefused("unknown or revoked key")

    guard = RequestGuard(
        app,
        authenticate=refuse,
        authorize=lambda scope, caller: None,
        limit_for=lambda path: 10**9,
        body_timeout_s=60,
    )
    sent: list[dict[str, Any]] = []

    async def trickle() -> dict[str, Any]:
        await asyncio.sleep(0.1)  # 10 bytes a second, for ever
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/events",
        "headers": [(b"content-length", b"100000000"), (b"authorization", b"Bearer k")],
    }
    started = time.monotonic()
    asyncio.run(asyncio.wait_for(guard(scope, trickle, send), 10))
    assert REFUSED_DRAIN_S <= time.monotonic() - started < REFUSED_DRAIN_S + 1
    assert reached == []
    assert sent[0]["status"] == 401
    assert (b"connection", b"close") in sent[0]["headers"]


def test_a_broken_gzip_body_is_named_in_words_not_in_zlib_error_codes(client, keys) -> None:
    headers = {**keys.header(keys.ingest), "Content-Encoding": "gzip"}
    answer = client.post("/v1/events", content=b"not gzip at all", headers=headers)
    assert (answer.status_code, answer.json()) == (
        400,
        {"detail": "body is not valid gzip: incorrect header check"},
    )
