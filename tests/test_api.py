"""The HTTP API in-process: records, limits, scopes and isolation, billing and outcomes."""

from __future__ import annotations

import datetime as dt
import gzip
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from fastapi.testclient import TestClient

from api_support import Keys, iso, prepare_ledger, usage
from payoff.api import ServerConfig, create_app
from payoff.api.errors import payoff_error_response
from payoff.core.invoicing import INVOICE_ACTIONS
from payoff.service.tasks import task_json
from payoff.service.writer import WriterBusy, WriterClosed
from payoff.store import open_store


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return prepare_ledger(tmp_path / "l.db")


@pytest.fixture
def client(tmp_path: Path, keys: Keys) -> Iterator[TestClient]:
    # No builder process: these requests are small, and live-server tests cover the builder.
    config = ServerConfig(str(tmp_path / "l.db"), max_records=5, max_body_bytes=4096, builders=0)
    with TestClient(create_app(config)) as test_client:
        yield test_client


def post_events(client: TestClient, key: str, body: bytes) -> dict:
    response = client.post("/v1/events", content=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


def test_events_are_answered_one_by_one_and_a_retry_adds_nothing(client, keys) -> None:
    body = msgspec.json.encode([usage("e1"), usage("e2"), {"id": "bad"}, usage("e1", model="x")])
    first = post_events(client, keys.ingest, body)
    assert first["statuses"] == ["accepted", "accepted", "rejected", "conflict"]
    assert [(p["index"], p["id"], p["status"]) for p in first["problems"]] == [
        (2, "bad", "rejected"),
        (3, "e1", "conflict"),
    ]
    assert first["problems"][0]["field"] == "time"
    retried = post_events(client, keys.ingest, body)
    assert retried["statuses"] == ["duplicate", "duplicate", "rejected", "conflict"]
    tasks = client.get("/v1/tasks", headers=keys.header(keys.admin)).json()["items"]
    assert [(t["id"], t["steps"], t["tokens_total"]) for t in tasks] == [("t1", 2, 3000)]


def test_json_lines_bodies_are_records_too(client, keys) -> None:
    body = b"\n".join(msgspec.json.encode(usage(f"e{i}")) for i in range(3)) + b"\n\n"
    assert post_events(client, keys.admin, body)["statuses"] == ["accepted"] * 3


def test_limits_are_refused_with_413_naming_the_limit(client, keys) -> None:
    headers = keys.header(keys.ingest)
    six = msgspec.json.encode([usage(f"e{i}") for i in range(6)])
    response = client.post("/v1/events", content=six, headers=headers)
    assert response.status_code == 413
    assert "at most 5" in response.json()["detail"]
    huge = b"[" + b" " * 5000 + b"]"
    response = client.post("/v1/events", content=huge, headers=headers)
    assert response.status_code == 413
    assert "4096" in response.json()["detail"]
    assert client.get("/v1/tasks", headers=keys.header(keys.admin)).json()["items"] == []


@pytest.mark.parametrize("body", [b"[1, 2", b"", b"   "])
def test_unreadable_bodies_are_400(client, keys, body) -> None:
    response = client.post("/v1/events", content=body, headers=keys.header(keys.ingest))
    assert response.status_code == 400
    assert response.json()["detail"]


def test_every_request_needs_a_valid_key(client, keys) -> None:
    assert client.get("/healthz").status_code == 200
    for method, path in [
        ("GET", "/v1/tasks"), ("POST", "/v1/events"), ("GET", "/v1/invoices"),
        ("POST", "/v1/attestations"), ("POST", "/v1/traces"), ("GET", "/v1/keys"),
    ]:  # fmt: skip
        assert client.request(method, path).status_code == 401
        bad = {"Authorization": "Bearer pyk_000000000000_nope"}
        response = client.request(method, path, headers=bad)
        assert response.status_code == 401
        assert "nope" not in response.text


def test_scopes_bound_what_each_key_may_do(client, keys) -> None:
    post_events(
        client, keys.ingest, msgspec.json.encode([usage("a1"), usage("g1", "globex", "tg")])
    )
    # An ingest key writes records and reads nothing.
    for path in ("/v1/tasks", "/v1/invoices", "/v1/outcomes", "/v1/usage"):
        assert client.get(path, headers=keys.header(keys.ingest)).status_code == 403
    # A customer key reads its own data and writes no records but signals about its own.
    acme = keys.header(keys.acme)
    assert [t["id"] for t in client.get("/v1/tasks", headers=acme).json()["items"]] == ["t1"]
    assert client.get("/v1/tasks/t1", headers=acme).status_code == 200
    usage_sent = client.post("/v1/events", content=msgspec.json.encode([usage("a9")]),
                             headers=acme)  # fmt: skip
    assert usage_sent.status_code == 403 and "may only send signals" in usage_sent.text
    # Another customer's ids answer 404, never their data.
    for path in ("/v1/tasks/tg", "/v1/tasks?customer=globex", "/v1/usage?customer=globex",
                 "/v1/outcomes?customer=globex", "/v1/invoices?customer=globex"):  # fmt: skip
        response = client.get(path, headers=acme)
        assert response.status_code == 404, path
        assert "g1" not in response.text
    # Only admin changes plans, invoices and keys.
    admin_only = [
        ("POST", "/v1/plans", {"content": b"id: x"}),
        ("POST", "/v1/invoice-runs", {"json": {"period": "2026-11"}}),
        ("POST", "/v1/keys", {"json": {"scope": "admin"}}),
        ("GET", "/v1/keys", {}),
        ("POST", "/v1/customers", {"json": {"id": "new"}}),
        ("POST", "/v1/customers/acme/secret", {"json": {}}),
        ("POST", "/v1/outcomes/o1/verify", {"json": {}}),
        (
            "POST",
            "/v1/subscriptions",
            {"json": {"customer": "acme", "plan": "outcomes", "from": "2026-01-01"}},
        ),
    ]
    for key in (keys.ingest, keys.acme):
        for method, path, kwargs in admin_only:
            response = client.request(method, path, headers=keys.header(key), **kwargs)
            assert response.status_code == 403, (path, response.text)


def test_invoices_are_run_by_admin_and_read_by_their_customer_only(client, keys) -> None:
    admin, acme, globex = (keys.header(k) for k in (keys.admin, keys.acme, keys.globex))
    drafts = client.post("/v1/invoice-runs", json={"period": "2026-10"}, headers=admin).json()
    assert sorted(d["customer"] for d in drafts) == ["acme", "globex"]
    acme_invoice = next(d["id"] for d in drafts if d["customer"] == "acme")
    assert client.get(f"/v1/invoices/{acme_invoice}", headers=acme).status_code == 200
    assert client.get(f"/v1/invoices/{acme_invoice}", headers=globex).status_code == 404
    listed = client.get("/v1/invoices", headers=globex).json()["items"]
    assert [d["customer"] for d in listed] == ["globex"]
    assert (
        client.post(f"/v1/invoices/{acme_invoice}/finalize", headers=admin).json()["status"]
        == "finalized"
    )
    refused = client.post(f"/v1/invoices/{acme_invoice}/finalize", headers=admin)
    assert refused.status_code == 422
    assert client.get("/v1/invoices/nope", headers=admin).status_code == 404


def test_revoked_keys_stop_working_at_once(client, keys) -> None:
    admin = keys.header(keys.admin)
    created = client.post(
        "/v1/keys", json={"scope": "ingest", "name": "agent"}, headers=admin
    ).json()
    assert created["key"].startswith("pyk_")
    listed = client.get("/v1/keys", headers=admin).json()
    assert created["key"] not in str(listed)
    assert post_events(client, created["key"], msgspec.json.encode([usage("r1")]))["accepted"] == 1
    assert client.delete(f"/v1/keys/{created['id']}", headers=admin).status_code == 200
    response = client.post("/v1/events", content=b"[]", headers=keys.header(created["key"]))
    assert response.status_code == 401


def test_plans_subscriptions_and_pagination(client, keys) -> None:
    admin = keys.header(keys.admin)
    plan = (
        "id: flat\nversion: 1\ncurrency: USD\ncharges:\n"
        "  - name: base\n    type: subscription\n    amount: '10.00'\n"
    )
    applied = client.post("/v1/plans", content=plan.encode(), headers=admin).json()
    assert (applied["id"], applied["created"]) == ("flat", True)
    assert client.post("/v1/plans", content=plan.encode(), headers=admin).json()["created"] is False
    bad = client.post("/v1/plans", content=b"id: [", headers=admin)
    assert bad.status_code == 422
    records = [usage(f"p{i}", task=f"task{i}") for i in range(5)]
    post_events(client, keys.ingest, msgspec.json.encode(records))
    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/tasks", params=params, headers=admin).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"task{i}" for i in range(5)]
    assert client.get("/v1/tasks", params={"limit": 5000}, headers=admin).status_code == 422
    assert client.get("/v1/tasks", params={"cursor": "!!"}, headers=admin).status_code == 400


def test_the_docs_page_is_self_contained_and_needs_no_key(client, keys) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/v1/events" in page.text and "/v1/traces" in page.text
    assert "<script" not in page.text
    assert "http://" not in page.text and "https://" not in page.text
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "payoff"
    assert client.get("/docs", headers=keys.header(keys.acme)).text == page.text


def test_gzip_bodies_are_inflated_within_the_limit(client, keys) -> None:
    headers = {**keys.header(keys.ingest), "Content-Encoding": "gzip"}
    body = gzip.compress(msgspec.json.encode([usage("z1"), usage("z2")]))
    assert client.post("/v1/events", content=body, headers=headers).json()["accepted"] == 2
    bomb = gzip.compress(b"[" + b" " * 100_000 + b"]")
    assert len(bomb) < 4096
    response = client.post("/v1/events", content=bomb, headers=headers)
    assert response.status_code == 413
    assert "inflates" in response.json()["detail"]
    broken = client.post("/v1/events", content=b"not gzip", headers=headers)
    assert broken.status_code == 400
    other = {**keys.header(keys.ingest), "Content-Encoding": "br"}
    assert client.post("/v1/events", content=b"[]", headers=other).status_code == 415


def test_the_economics_report_is_the_providers_own(client, keys) -> None:
    post_events(client, keys.ingest, msgspec.json.encode([usage("r1")]))
    for key in (keys.acme, keys.ingest):
        assert client.get("/v1/report?period=2026-11", headers=keys.header(key)).status_code == 403
    report = client.get("/v1/report?period=2026-11&by=customer", headers=keys.header(keys.admin))
    assert report.status_code == 200
    assert report.json()["total"]["tasks"] == 1


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/v1/tasks", {"params": {"cursor": "OTIyMzM3MjAzNjg1NDc3NTgwOA"}}, 400),
        ("POST", "/v1/events", {"content": b"[" * 4_000}, 400),
        ("POST", "/v1/plans", {"content": b"a: " + b"[" * 3000}, 422),
        ("POST", "/v1/subscriptions",
         {"json": {"customer": "acme", "plan": "outcomes@999999999999999999999",
                   "from": "2026-01-01"}}, 422),
        ("POST", "/v1/invoice-runs",
         {"json": {"period": "2026-11", "as_of": "0001-01-01T00:00:00Z"}}, 422),
        ("POST", "/v1/outcomes/nope/verify", {"json": {}}, 404),
        # NaN and Infinity are no JSON numbers, yet Python reads them: the refusal, which
        # echoes the input at fault, must still encode as JSON.
        ("POST", "/v1/customers", {"content": b'{"id": Infinity}', "headers": JSON}, 422),
        ("POST", "/v1/keys",
         {"content": b'{"scope": "admin", "name": NaN}', "headers": JSON}, 422),
        ("POST", "/v1/invoice-runs", {"content": b'{"period": -Infinity}', "headers": JSON}, 422),
    ],
)  # fmt: skip
def test_odd_inputs_are_refused_not_crashed_on(client, keys, method, path, kwargs, status) -> None:
    headers = {**keys.header(keys.admin), **kwargs.pop("headers", {})}
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text


def test_gzip_bodies_of_several_members_lose_nothing(client, keys) -> None:
    headers = {**keys.header(keys.ingest), "Content-Encoding": "gzip"}
    lines = [msgspec.json.encode(usage(f"m{i}")) + b"\n" for i in range(3)]
    body = b"".join(gzip.compress(line) for line in lines)
    assert client.post("/v1/events", content=body, headers=headers).json()["accepted"] == 3


def test_verdicts_over_events_must_come_signed(client, keys) -> None:
    an_hour_ago = iso(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))  # not yet deemed
    records = [
        usage("v1", customer="globex", task="gt"),
        {"record": "outcome", "id": "go", "task": "gt", "customer": "globex",
         "type": "ticket.resolved", "time": an_hour_ago},
        {"record": "attestation", "id": "ga", "outcome": "go", "verdict": "accept",
         "time": an_hour_ago},
    ]  # fmt: skip
    answer = post_events(client, keys.ingest, msgspec.json.encode(records))
    assert answer["statuses"] == ["accepted", "accepted", "rejected"]
    assert "signed" in answer["problems"][0]["reason"]
    listed = client.get("/v1/outcomes", headers=keys.header(keys.globex)).json()["items"]
    assert [o["status"] for o in listed] == ["claimed"]


def test_customer_keys_see_only_their_own_rows_in_every_list(client, keys) -> None:
    records = []
    for customer in ("acme", "globex"):
        records += [
            usage(f"{customer}-e", customer=customer, task=f"{customer}-t",
                  time="2026-11-03T10:00:00Z"),
            {"record": "outcome", "id": f"{customer}-o", "task": f"{customer}-t",
             "customer": customer, "type": "ticket.resolved", "time": "2026-11-03T10:00:00Z"},
        ]  # fmt: skip
    post_events(client, keys.ingest, msgspec.json.encode(records))
    acme = keys.header(keys.acme)
    for path in ("/v1/outcomes", "/v1/tasks", "/v1/invoices"):
        items = client.get(path, headers=acme).json()["items"]
        assert {i["customer"] for i in items} <= {"acme"}, path
    assert [o["id"] for o in client.get("/v1/outcomes", headers=acme).json()["items"]] == ["acme-o"]
    usage_rows = client.get("/v1/usage", headers=acme).json()
    assert sum(row["tasks"] for row in usage_rows) == 1
    rows = client.get("/v1/integrity?period=2026-11", headers=acme).json()
    assert {row["customer"] for row in rows} == {"acme"}
    other = client.get("/v1/integrity?period=2026-11&customer=globex", headers=acme)
    assert other.status_code == 404


def test_filtered_lists_page_through_every_match_once(client, keys) -> None:
    now = dt.datetime.now(dt.UTC)
    records = []
    for n in range(10):  # alternately old enough to be deemed verified, and still claimed
        claimed = iso(now - dt.timedelta(days=20 if n % 2 else 0, hours=1))
        records += [
            usage(f"f{n}", task=f"ft{n}", time=claimed),
            {"record": "outcome", "id": f"fo{n}", "task": f"ft{n}", "customer": "acme",
             "type": "ticket.resolved", "time": claimed},
        ]  # fmt: skip
    for start in range(0, len(records), 5):
        post_events(client, keys.ingest, msgspec.json.encode(records[start : start + 5]))
    seen, cursor = [], None
    while True:
        params = {"status": "claimed", "limit": 2} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/outcomes", params=params, headers=keys.header(keys.acme)).json()
        seen += [(o["id"], o["status"]) for o in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [(f"fo{n}", "claimed") for n in range(0, 10, 2)]


def test_a_key_revoked_by_another_process_stops_within_a_second(client, keys, tmp_path) -> None:
    from payoff.service import access
    from payoff.store import open_store

    admin = keys.header(keys.admin)
    created = client.post("/v1/keys", json={"scope": "ingest"}, headers=admin).json()
    headers = keys.header(created["key"])
    assert client.post("/v1/events", content=b"[]", headers=headers).status_code == 400
    other = open_store(tmp_path / "l.db")  # as `payoff keys revoke` would, elsewhere
    access.revoke_key(other, created["id"])
    other.close()
    time.sleep(1.1)
    assert client.post("/v1/events", content=b"[]", headers=headers).status_code == 401


def test_a_task_has_the_shape_payoff_tasks_json_prints(client, keys, tmp_path) -> None:
    post_events(client, keys.ingest, msgspec.json.encode([usage("e1"), usage("e2")]))
    (item,) = client.get("/v1/tasks", headers=keys.header(keys.admin)).json()["items"]
    store = open_store(str(tmp_path / "l.db"), create=False)
    try:
        assert item == task_json(store.tasks()[0])
    finally:
        store.close()
    shown = client.get("/v1/tasks/t1", headers=keys.header(keys.admin)).json()
    assert {k: v for k, v in shown.items() if not k.startswith("step_list")} == item
    assert len(shown["step_list"]) == 2 and "cost_usd" in shown["step_list"][0]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("GET", "/v1/tasks/nope", {}, 404),  # TaskNotFound
        ("DELETE", "/v1/keys/nope", {}, 404),  # KeyNotFound
        ("POST", "/v1/keys", {"json": {"scope": "customer:nobody"}}, 404),  # CustomerNotFound
        ("POST", "/v1/keys", {"json": {"scope": "everything"}}, 422),  # AccessError
        ("GET", "/v1/invoices/nope", {}, 404),  # InvoiceNotFound
        ("POST", "/v1/subscriptions",
         {"json": {"customer": "acme", "plan": "nope", "from": "2026-01-01"}}, 404),  # PlanNotFound
        ("POST", "/v1/traces", {"content": b"{}", "headers": {"content-type": "text/plain"}}, 415),
        ("POST", "/v1/traces",
         {"content": b"not json", "headers": {"content-type": "application/json"}}, 400),
    ],
)  # fmt: skip
def test_errors_are_answered_by_their_type(client, keys, method, path, kwargs, status) -> None:
    headers = keys.header(keys.admin) | kwargs.pop("headers", {})
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text


def test_a_plan_version_with_another_body_is_a_conflict(client, keys) -> None:
    admin = keys.header(keys.admin)
    plan = "id: flat\nversion: 1\ncurrency: USD\ncharges:\n  - name: base\n    type: subscription\n"
    assert client.post(
        "/v1/plans", content=f"{plan}    amount: '10.00'\n", headers=admin
    ).is_success
    changed = client.post("/v1/plans", content=f"{plan}    amount: '11.00'\n", headers=admin)
    assert changed.status_code == 409
    assert "apply it as version 2" in changed.json()["detail"]


def test_a_busy_writer_is_503_with_retry_after() -> None:
    response = payoff_error_response(None, WriterBusy("100 requests are waiting"))  # type: ignore[arg-type]
    assert response.status_code == 503 and response.headers["retry-after"] == "1"
    assert b"busy: 100 requests are waiting; retry shortly" in response.body


def test_a_closed_writer_is_503_with_retry_after() -> None:
    response = payoff_error_response(None, WriterClosed("the writer is closed"))  # type: ignore[arg-type]
    assert response.status_code == 503 and response.headers["retry-after"] == "1"


def test_key_and_scope_refusals_keep_their_bodies_and_headers(client, keys) -> None:
    missing = client.get("/v1/tasks")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json() == {"detail": "missing bearer key: send `Authorization: Bearer <key>`"}
    unknown = client.get("/v1/tasks", headers={"Authorization": "Bearer pyk_000000000000_nope"})
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    assert unknown.json() == {"detail": "unknown or revoked key"}
    scope = client.get("/v1/tasks", headers=keys.header(keys.ingest))
    assert scope.status_code == 403 and "www-authenticate" not in scope.headers
    assert scope.json() == {"detail": "an ingest key may only write records"}
    admin_only = client.get("/v1/keys", headers=keys.header(keys.acme))
    assert admin_only.json() == {
        "detail": "this needs an admin key; this key's scope is customer:acme"
    }
    other = client.get("/v1/tasks?customer=globex", headers=keys.header(keys.acme))
    assert (other.status_code, other.json()) == (404, {"detail": "no customer 'globex'"})


def test_refusals_in_routes_keep_their_status_and_words(client, keys) -> None:
    admin = keys.header(keys.admin)
    naive = {"period": "2026-11", "as_of": "2026-11-30T00:00:00"}
    answers = [
        (client.get("/v1/tasks", params={"cursor": "!!"}, headers=admin),
         400, "cursor is not one this server gave out"),
        (client.post("/v1/plans", content=b"id: \xff", headers=admin),
         400, "a plan is UTF-8 text (YAML or JSON)"),
        (client.post("/v1/invoices/x/burn", headers=admin),
         404, f"no invoice action 'burn'; use {', '.join(INVOICE_ACTIONS)}"),
        (client.post("/v1/invoice-runs", json=naive, headers=admin),
         422, "as_of needs a time-zone offset (e.g. Z)"),
        (client.post("/v1/events", content=b"[]",
                     headers={**keys.header(keys.ingest), "Content-Encoding": "br"}),
         415, "content-encoding 'br': only gzip and deflate are understood"),
    ]  # fmt: skip
    for response, status, detail in answers:
        assert (response.status_code, response.json()) == (status, {"detail": detail})


def test_api_errors_speak_of_the_api_not_of_cli_options(client, keys) -> None:
    response = client.get("/v1/report?period=2026-13", headers=keys.header(keys.admin))
    assert response.status_code == 422
    assert response.json() == {"detail": "a period is YYYY-MM, got '2026-13'"}


def test_routes_raise_errors_of_the_tree_and_never_pick_a_status() -> None:
    """Statuses come from api/errors.py by type: no route raises FastAPI's HTTPException."""
    api = Path(payoff_error_response.__code__.co_filename).parent
    for module in sorted(api.glob("*.py")):
        assert "HTTPException" not in module.read_text(), module.name
