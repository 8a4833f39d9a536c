"""Property-based tests of the whole API from its own OpenAPI document, with each key scope.

Schemathesis generates requests for every operation, valid and invalid, and sends them with
an admin key, an ingest key, a customer key, no key and a key nobody issued. For every one:
nothing answers 5xx, every answer matches the schema, and the scopes hold as
docs/server.md tables them (SCOPE_CHECK): a request its key may not make is answered 401
(no valid key) or 403 (a scope that does not allow it), and one it may make is never.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import checks

from api_support import prepare_ledger
from payoff.api import ServerConfig, create_app
from reliability import record, size

# Every test here starts processes or a live server: seconds each.
pytestmark = pytest.mark.slow

_folder = Path(tempfile.mkdtemp(prefix="payoff-schemathesis-"))
KEYS = prepare_ledger(_folder / "l.db")
app = create_app(
    ServerConfig(str(_folder / "l.db"), max_records=100, max_body_bytes=65536, builders=0)
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=KEYS.header(KEYS.admin))

WRONG_KEY = "pyk_" + "0" * 43
SCOPES = {
    "admin": KEYS.admin,
    "ingest": KEYS.ingest,
    "customer": KEYS.acme,
    "no key": None,
    "wrong key": WRONG_KEY,
}
# What each scope may do (docs/server.md, "Keys and scopes" and "Reading and billing"): an
# operation is (method, path template); admin may do everything.
INGEST_MAY = {("POST", "/v1/events"), ("POST", "/v1/traces"), ("POST", "/v1/attestations")}
CUSTOMER_MAY = {
    ("GET", "/v1/tasks"), ("GET", "/v1/tasks/{task_id}"), ("GET", "/v1/usage"),
    ("GET", "/v1/outcomes"), ("GET", "/v1/integrity"), ("GET", "/v1/invoices"),
    ("GET", "/v1/invoices/{invoice_id}"), ("POST", "/v1/attestations"),
    ("POST", "/v1/outcomes/{outcome_id}/evidence"), ("POST", "/v1/events"),
    ("GET", "/v1/customers/{customer}/credits/balance"),
    ("GET", "/v1/customers/{customer}/credits/ledger"),
    ("GET", "/v1/reservations/{reservation_id}"),
    ("GET", "/v1/customers/{customer}/balance"),
}  # fmt: skip
CUSTOMER_RECORDS_REFUSED = ("a customer key may only send signals", "which is not customer")
"""A customer key may POST /v1/events, signals about its own tasks only: other records are
refused 403 for what they hold, not for the key's scope."""
PUBLIC = {("GET", "/healthz"), ("GET", "/metrics")}


def may(scope: str, method: str, path: str) -> bool:
    operation = (method.upper(), path)
    if operation in PUBLIC or scope == "admin":
        return True
    if scope == "ingest":
        return operation in INGEST_MAY
    if scope == "customer":
        return operation in CUSTOMER_MAY
    return False


def refusal_for(scope: str) -> int:
    return 401 if scope in ("no key", "wrong key") else 403


@dataclass
class Seen:
    """Requests sent with one scope, and what went wrong with them (for the long form)."""

    requests: int = 0
    server_errors: int = 0
    scope_violations: int = 0


SEEN = {scope: Seen() for scope in SCOPES}


def scope_check_for(scope: str) -> checks.CheckFunction:
    def scopes_hold(ctx: object, response: schemathesis.Response, case: schemathesis.Case) -> None:
        SEEN[scope].requests += 1
        SEEN[scope].server_errors += response.status_code >= 500
        operation = case.operation
        if case.method.upper() != operation.method.upper():
            return  # a probe with a method the path does not serve (405, checked elsewhere)
        status = response.status_code
        allowed = may(scope, operation.method, operation.path)
        refused_records = (
            scope == "customer"
            and operation.path == "/v1/events"
            and status == 403
            and any(said in response.text for said in CUSTOMER_RECORDS_REFUSED)
        )
        if allowed and status in (401, 403) and not refused_records:
            SEEN[scope].scope_violations += 1
            raise AssertionError(f"{scope} may {case.method} {case.path}, answered {status}")
        if not allowed and status != refusal_for(scope):
            SEEN[scope].scope_violations += 1
            raise AssertionError(
                f"{scope} may not {case.method} {case.path}: answered {status}, "
                f"expected {refusal_for(scope)}"
            )

    return scopes_hold


# Whether a well-shaped request is accepted is the ledger's business, not the schema's: a
# plan for an unknown customer is refused though well formed, and a batch of records is
# answered 200 record by record, rejected ones included. Every other check runs: no 5xx,
# status codes, content types, headers and bodies as documented, keys enforced.
RULE_CHECKS = [checks.negative_data_rejection, checks.positive_data_acceptance]
# Without a key that may make the request, the answer is a refusal whatever the request:
# schemathesis's checks that a bad request is refused or that auth was required would read
# the 401/403 for what it is not.
REFUSED_CHECKS = [*RULE_CHECKS, checks.ignored_auth, checks.missing_required_header]
# Without a valid key, a request with a body is answered 401 before it is routed (the key is
# checked before anything else is read), so a method the path does not serve is 401, not 405.
KEYLESS_CHECKS = [*REFUSED_CHECKS, checks.unsupported_method]


@schemathesis.serializer("application/x-ndjson", "application/yaml")
def _text(ctx: object, value: object) -> bytes:
    return value.encode() if isinstance(value, str) else str(value).encode()


@schemathesis.serializer("application/x-protobuf")
def _binary(ctx: object, value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


@pytest.fixture(scope="module", autouse=True)
def running_app() -> Iterator[None]:
    with TestClient(app):  # runs the lifespan: ledger, catalog, writer thread
        yield
    if not any(seen.requests for seen in SEEN.values()):
        return  # only the tests without schemathesis ran
    figures = {f"{scope}: {name}": value for scope, seen in SEEN.items()
               for name, value in asdict(seen).items() if seen.requests}  # fmt: skip
    record("schemathesis: every operation, each key scope", "no 5xx; answers as documented; "
           "a request a key may not make is 401/403, one it may make never", figures,
           [f"{s}: {n.server_errors} 5xx, {n.scope_violations} scope violations"
            for s, n in SEEN.items() if n.server_errors or n.scope_violations])  # fmt: skip


def _headers(scope: str) -> dict[str, str]:
    key = SCOPES[scope]
    return {} if key is None else KEYS.header(key)


@schema.parametrize()
@settings(
    max_examples=size("SCHEMATHESIS_EXAMPLES"),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api(case: schemathesis.Case) -> None:
    """With an admin key: every request answered as documented, none 5xx."""
    case.call_and_validate(
        headers=_headers("admin"),
        additional_checks=[scope_check_for("admin")],
        excluded_checks=RULE_CHECKS,
    )


@pytest.mark.parametrize("scope", [s for s in SCOPES if s != "admin"])
@schema.parametrize()
@settings(
    max_examples=size("SCHEMATHESIS_SCOPE_EXAMPLES"),
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_with_each_other_scope(case: schemathesis.Case, scope: str) -> None:
    """With an ingest key, a customer key, no key and a wrong key: the scope holds, the
    answers are as documented, none 5xx."""
    refused = not may(scope, case.method, case.path)
    case.call_and_validate(
        headers=_headers(scope),
        additional_checks=[scope_check_for(scope)],
        excluded_checks=(
            KEYLESS_CHECKS
            if SCOPES[scope] is None or scope == "wrong key"
            else REFUSED_CHECKS
            if refused
            else RULE_CHECKS
        ),
    )


@pytest.mark.parametrize("scope", [s for s in SCOPES if s != "admin"])
def test_a_request_its_key_may_not_make_is_refused_whatever_its_body(scope: str) -> None:
    """Without a key that may make it, a request is refused as such (401 or 403) before
    its body is read: a malformed body changes nothing."""
    client = TestClient(app)  # the app runs already (running_app)
    wrong, tried = [], 0
    for path, methods in schema.raw_schema["paths"].items():
        if "post" not in methods or may(scope, "POST", path):
            continue
        url = path.replace("{customer}", "acme").replace("{action}", "verify")
        url = re.sub(r"\{[a-z_]+\}", "x", url)
        headers = {**_headers(scope), "content-type": "application/json"}
        answer = client.post(url, content=b"{", headers=headers)
        if answer.status_code != refusal_for(scope):
            wrong.append(f"POST {path}: {answer.status_code} {answer.text[:100]}")
        tried += 1
    guarantee = f"a malformed body to a route the key may not use is answered {refusal_for(scope)}"
    record(f"key before body: {scope}", guarantee, {"routes": tried, "wrong": len(wrong)}, wrong)
    assert not wrong, f"{scope}: expected {refusal_for(scope)}:\n" + "\n".join(wrong)
