"""Signed verdicts over HTTP: good, bad signature, stale, future, replayed, rotated secret."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from api_support import Keys, iso, prepare_ledger
from payoff.api import ServerConfig, create_app
from payoff.core.signatures import signature_header

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return prepare_ledger(tmp_path / "l.db")


@pytest.fixture
def client(tmp_path: Path, keys: Keys) -> Iterator[TestClient]:
    config = ServerConfig(db=str(tmp_path / "l.db"), builders=0)
    with TestClient(create_app(config)) as test_client:
        claimed = (NOW - dt.timedelta(hours=1)).isoformat()
        records = []
        for customer in ("acme", "globex"):
            for n in range(1, 6):
                task, outcome = f"{customer}-t{n}", f"{customer}-o{n}"
                records += [
                    {"id": f"{task}-e", "time": claimed, "customer": customer, "task": task,
                     "kind": "tool", "cost": "0.01"},
                    {"record": "outcome", "id": outcome, "task": task, "customer": customer,
                     "type": "ticket.resolved", "time": claimed},
                ]  # fmt: skip
        response = test_client.post(
            "/v1/events", content=msgspec.json.encode(records), headers=keys.header(keys.ingest)
        )
        assert response.json()["accepted"] == len(records)
        yield test_client


def rotate(client: TestClient, keys: Keys, customer: str, overlap_s: int = 0) -> str:
    response = client.post(
        f"/v1/customers/{customer}/secret",
        json={"previous_valid_for_s": overlap_s},
        headers=keys.header(keys.admin),
    )
    assert response.status_code == 200, response.text
    return str(response.json()["secret"])


def verdict(id: str, outcome: str, value: str = "accept", at: dt.datetime | None = None) -> bytes:
    record = {"record": "attestation", "id": id, "outcome": outcome, "verdict": value,
              "time": iso(at or dt.datetime.now(dt.UTC))}  # fmt: skip
    return msgspec.json.encode(record)


def send(client, key, body, secrets, timestamp_s=None):
    signed_at = int(time.time()) if timestamp_s is None else timestamp_s
    headers = {
        "Authorization": f"Bearer {key}",
        "payoff-signature": signature_header(secrets, signed_at, body),
        "content-type": "application/json",
    }
    return client.post("/v1/attestations", content=body, headers=headers)


def status_of(client: TestClient, keys: Keys, outcome: str) -> str:
    listed = client.get("/v1/outcomes", headers=keys.header(keys.admin)).json()["items"]
    return next(o["status"] for o in listed if o["id"] == outcome)


def test_a_good_signature_verifies_the_outcome(client, keys) -> None:
    secret = rotate(client, keys, "acme")
    response = send(client, keys.acme, verdict("v1", "acme-o1"), [secret])
    assert response.status_code == 200, response.text
    assert response.json() == {
        "id": "v1", "outcome": "acme-o1", "verdict": "accept", "status": "accepted",
    }  # fmt: skip
    assert status_of(client, keys, "acme-o1") == "verified"


def test_refusals_change_nothing(client, keys) -> None:
    secret = rotate(client, keys, "acme")
    now = int(time.time())
    cases = [
        ("bad signature", [secret + "x"], None, 401, "does not match"),
        # Well past the 300 s tolerance: a loaded machine may take seconds between `now` and
        # the server's check, which brings a timestamp from the future closer.
        ("stale", [secret], now - 400, 401, "old"),
        ("future", [secret], now + 400, 401, "future"),
    ]
    for _, secrets, timestamp, code, reason in cases:
        response = send(client, keys.acme, verdict("v2", "acme-o2"), secrets, timestamp)
        assert response.status_code == code
        assert reason in response.json()["detail"]
        assert secret not in response.text
    missing = client.post(
        "/v1/attestations", content=verdict("v2", "acme-o2"), headers=keys.header(keys.acme)
    )
    assert missing.status_code == 401
    assert "payoff-signature" in missing.json()["detail"]
    assert status_of(client, keys, "acme-o2") == "claimed"


def test_a_replay_is_refused_by_its_id(client, keys) -> None:
    secret = rotate(client, keys, "acme")
    body = verdict("v3", "acme-o3")
    assert send(client, keys.acme, body, [secret]).status_code == 200
    replay = send(client, keys.acme, body, [secret])
    assert replay.status_code == 409
    assert "already received" in replay.json()["detail"]
    other = send(client, keys.acme, verdict("v3", "acme-o3", "reject"), [secret])
    assert other.status_code == 409
    assert status_of(client, keys, "acme-o3") == "verified"


def test_rotation_keeps_the_old_secret_for_its_overlap_only(client, keys) -> None:
    first = rotate(client, keys, "acme")
    second = rotate(client, keys, "acme", overlap_s=3600)
    assert send(client, keys.acme, verdict("r1", "acme-o1"), [first]).status_code == 200
    assert send(client, keys.acme, verdict("r2", "acme-o2"), [second]).status_code == 200
    third = rotate(client, keys, "acme", overlap_s=0)
    assert send(client, keys.acme, verdict("r3", "acme-o3"), [first]).status_code == 401
    assert send(client, keys.acme, verdict("r3", "acme-o3"), [second]).status_code == 401
    # A sender mid-rotation signs with both; one current secret suffices.
    assert send(client, keys.acme, verdict("r3", "acme-o3"), [second, third]).status_code == 200


def test_a_customer_attests_only_its_own_outcomes(client, keys) -> None:
    acme_secret, globex_secret = rotate(client, keys, "acme"), rotate(client, keys, "globex")
    for secrets in ([acme_secret], [globex_secret]):
        response = send(client, keys.globex, verdict("x1", "acme-o4"), secrets)
        assert response.status_code == 404
    # Signed with another customer's secret, the verdict does not verify.
    assert send(client, keys.admin, verdict("x1", "acme-o4"), [globex_secret]).status_code == 401
    assert send(client, keys.admin, verdict("x1", "acme-o4"), [acme_secret]).status_code == 200


def test_a_signed_verdict_cannot_be_back_dated(client, keys) -> None:
    secret = rotate(client, keys, "acme")
    back_dated = verdict("b1", "acme-o5", at=NOW - dt.timedelta(days=2))
    response = send(client, keys.acme, back_dated, [secret])
    assert response.status_code == 422
    assert "time" in response.json()["detail"]


def test_the_lifecycle_still_applies(client, keys) -> None:
    secret = rotate(client, keys, "acme")
    assert send(client, keys.acme, verdict("l1", "acme-o5", "reject"), [secret]).status_code == 200
    response = send(client, keys.acme, verdict("l2", "acme-o5", "accept"), [secret])
    assert response.status_code == 422
    assert status_of(client, keys, "acme-o5") == "rejected"
    not_a_verdict = send(client, keys.acme, b'{"id": "u1"}', [secret])
    assert not_a_verdict.status_code == 422
    assert send(client, keys.acme, verdict("u2", "nope"), [secret]).status_code == 404


def test_concurrent_conflicting_verdicts_never_both_succeed(client, keys) -> None:
    secret = rotate(client, keys, "acme")
    for number in range(1, 6):
        outcome, answers = f"acme-o{number}", {}

        def customer_rejects(outcome: str = outcome, answers: dict = answers) -> None:
            body = verdict(f"race-{outcome}", outcome, "reject")
            answers["customer"] = send(client, keys.acme, body, [secret]).status_code

        def auditor_verifies(outcome: str = outcome, answers: dict = answers) -> None:
            answers["auditor"] = client.post(
                f"/v1/outcomes/{outcome}/verify", json={"by": "auditor"},
                headers=keys.header(keys.admin),
            ).status_code  # fmt: skip

        threads = [
            threading.Thread(target=customer_rejects),
            threading.Thread(target=auditor_verifies),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(answers.values()) == [200, 422], answers
        final = status_of(client, keys, outcome)
        assert final == ("rejected" if answers["customer"] == 200 else "verified")
