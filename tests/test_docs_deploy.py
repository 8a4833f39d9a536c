"""The deployment reference and the public API reference say what the code does.

docs/deploy.md names every environment variable and every `payoff serve` option; `/docs`
and `/openapi.json` open without a key while every /v1 route still needs one; and every
request example on `/docs` is accepted by the server as written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import typer.main
from fastapi.testclient import TestClient

from api_support import Keys, iso, prepare_ledger
from factories import REPO
from payoff.api import ServerConfig, create_app, examples
from payoff.cli import app as cli_app
from payoff.core.signatures import signature_header

DEPLOY = REPO / "docs" / "deploy.md"
ENV_NAME = re.compile(r"\bPAYOFF_[A-Z_]+\b")


def _commands(group: Any) -> Iterator[Any]:
    yield group
    for command in getattr(group, "commands", {}).values():
        yield from _commands(command)


def _envvars_in_code() -> set[str]:
    root: Any = typer.main.get_command(cli_app)
    declared = {p.envvar for command in _commands(root) for p in command.params if p.envvar}
    read = {
        name
        for source in (REPO / "src" / "payoff").rglob("*.py")
        for name in ENV_NAME.findall(source.read_text())
    }
    config = ServerConfig(prices=Path("p.yaml"), builders=1).to_env().keys()
    return declared | read | set(config)


def test_deploy_md_names_every_environment_variable() -> None:
    names = _envvars_in_code()
    assert {"PAYOFF_DB", "PAYOFF_API_KEY", "PAYOFF_MAX_BODY_BYTES"} <= names
    text = DEPLOY.read_text()
    assert sorted(name for name in names if f"`{name}`" not in text) == []


def test_deploy_md_names_every_serve_option() -> None:
    root: Any = typer.main.get_command(cli_app)
    serve = root.commands["serve"]
    options = [opt for p in serve.params if p.name != "help" for opt in p.opts]
    assert "--max-body-bytes" in options
    text = DEPLOY.read_text()
    assert [opt for opt in options if f"`{opt}" not in text] == []


def test_deploy_md_covers_running_it_for_real() -> None:
    text = DEPLOY.read_text()
    for topic in (
        "payoff backup",
        "payoff restore",
        "/healthz",
        "client_max_body_size",
        "X-Forwarded-For",
        "FORWARDED_ALLOW_IPS",
        "chmod 600",
        "integrity_check",
        "## Upgrading",
        "## Logs",
    ):
        assert topic in text, topic
    assert "(deploy.md)" in (REPO / "docs" / "server.md").read_text()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return prepare_ledger(tmp_path / "l.db")


@pytest.fixture
def client(tmp_path: Path, keys: Keys) -> Iterator[TestClient]:
    config = ServerConfig(str(tmp_path / "l.db"), builders=0)
    with TestClient(create_app(config)) as test_client:
        yield test_client


def test_the_reference_is_open_and_every_v1_route_needs_a_key(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    routes = [
        (method.upper(), re.sub(r"\{[^}]+\}", "x", path))
        for path, operations in paths.items()
        if path.startswith("/v1")
        for method in operations
    ]
    assert len(routes) > 20
    for method, path in routes:
        response = client.request(method, path)
        assert response.status_code == 401, (method, path, response.text)


def test_the_docs_page_shows_an_example_for_each_main_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path, kinds in [
        ("/v1/events", {"application/json", "application/x-ndjson"}),
        ("/v1/traces", {"application/json"}),
        ("/v1/attestations", {"application/json"}),
        ("/v1/invoice-runs", {"application/json"}),
    ]:
        content = paths[path]["post"]["requestBody"]["content"]
        assert {kind for kind in content if content[kind].get("examples")} == kinds, path
    page = client.get("/docs").text
    assert "evt_0001" in page and "payoff-signature" in page and "resourceSpans" in page
    assert '{"id": "evt_0002"' in page.replace("&quot;", '"')  # the JSON Lines body, as sent


def _example(content: dict[str, Any], kind: str) -> Any:
    return next(iter(content[kind]["examples"].values()))["value"]


def test_every_example_is_accepted_as_written(client: TestClient, keys: Keys) -> None:
    ingest = keys.header(keys.ingest)
    array = _example(examples.EVENTS, "application/json")
    answer = client.post("/v1/events", content=json.dumps(array), headers=ingest).json()
    assert answer["accepted"] == 2
    lines = _example(examples.EVENTS, "application/x-ndjson")
    answer = client.post("/v1/events", content=lines, headers=ingest).json()
    assert answer["duplicates"] == 2  # the same records, sent the other way
    export = _example(examples.TRACES, "application/json")
    headers = {**ingest, "content-type": "application/json"}
    traced = client.post("/v1/traces", content=json.dumps(export), headers=headers)
    assert traced.status_code == 200 and "partialSuccess" not in traced.json()
    for run in examples.INVOICE_RUN["application/json"]["examples"].values():
        response = client.post(
            "/v1/invoice-runs", json=run["value"], headers=keys.header(keys.admin)
        )
        assert response.status_code == 200, response.text


def test_the_attestation_example_is_accepted_when_signed(client: TestClient, keys: Keys) -> None:
    now = dt.datetime.now(dt.UTC)
    record = examples.ATTESTATION_RECORD
    claimed = iso(now - dt.timedelta(hours=1))
    setup = [
        {"id": "e-551", "time": claimed, "customer": "acme", "task": "t-551", "kind": "tool",
         "cost": "0.01"},
        {"record": "outcome", "id": record["outcome"], "task": "t-551", "customer": "acme",
         "type": "ticket.resolved", "time": claimed},
    ]  # fmt: skip
    written = client.post(
        "/v1/events", content=msgspec.json.encode(setup), headers=keys.header(keys.ingest)
    )
    assert written.json()["accepted"] == 2
    secret = client.post("/v1/customers/acme/secret", json={}, headers=keys.header(keys.admin))
    # As written but for its time, which must be near the server's clock.
    body = msgspec.json.encode({**record, "time": iso(now)})
    headers = {
        **keys.header(keys.acme),
        "payoff-signature": signature_header([secret.json()["secret"]], int(time.time()), body),
        "content-type": "application/json",
    }
    response = client.post("/v1/attestations", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["verdict"] == "accept"
