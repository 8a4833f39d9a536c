"""Judges: the verifier a contract names, as a real local command and as a real endpoint on
loopback. Its verdict is kept with its reason; a judge that fails or times out leaves the
claim pending, never verified."""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import json
import re
import shutil
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from contract_support import billed, ingest, invoice, ledger, this_month
from factories import REPO, outcome, signal, tool_usage
from payoff.cli import app
from payoff.core.evidence import evidence_digest
from payoff.service import contracts, evidence, judges, outcomes
from payoff.service.judges import JudgeFailed
from payoff.service.outcomes import OutcomeError
from payoff.store import open_store
from payoff.store.contracts import ContractConflict
from payoff.store.protocol import Store

JUDGE = REPO / "tests" / "judges" / "resolution_judge.py"
runner = CliRunner()


def automated_resolution(judge: str) -> str:
    """Zendesk's rule: evaluated after 72 h without activity, then checked by a judge."""
    return f"""id: support.automated_resolution
version: 1
outcome: ticket.resolved
unit: {{singular: automated resolution, plural: automated resolutions}}
verification:
  inactivity: 72h
  judge: {judge}
"""


def command_judge(timeout: str = "20s") -> str:
    return automated_resolution(
        f"{{command: [{json.dumps(sys.executable)}, {json.dumps(str(JUDGE))}], timeout: {timeout}}}"
    )


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def claims(store: Store, *ids: str, at: str = "2026-10-02T00:00:00Z") -> None:
    records: list[dict[str, object]] = []
    for n, outcome_id in enumerate(ids):
        task = f"t{n}"
        records += [
            tool_usage(f"u{n}", task=task, time="2026-10-01T00:00:00Z", customer="c"),
            outcome(outcome_id, task, "c", time=at, value=None),
        ]
    assert ingest(store, *records).clean


def status(store: Store, outcome_id: str) -> tuple[str, str | None, str | None]:
    (state,) = [s for s in outcomes.list_states(store) if s.outcome.id == outcome_id]
    step = state.lifecycle.last_step
    return state.lifecycle.status, step.by, step.reason


@pytest.mark.slow
def test_a_judge_run_as_a_local_command_decides_the_due_claims(tmp_path: Path) -> None:
    store = ledger(tmp_path, command_judge())
    claims(store, "o1", "o2-reject")
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    ingest(
        store,
        tool_usage("u9", task="t9", time=iso(recent), customer="c"),
        outcome("o3", "t9", "c", time=iso(recent), value=None),  # not quiet 72 h yet
    )
    run = judges.judge_pending(store)
    assert [(s.outcome.id, s.lifecycle.status) for s in run.judged] == [
        ("o1", "verified"),
        ("o2-reject", "rejected"),
    ]
    assert run.failed == {} and list(run.waiting) == ["o3"]
    assert "is due for its judge from" in run.waiting["o3"]
    assert status(store, "o1") == (
        "verified", "judge", "the conversation ended with the customer's thanks"
    )  # fmt: skip
    assert status(store, "o2-reject") == (
        "rejected", "judge", "the customer's question was not answered"
    )  # fmt: skip
    # The judge's verdict is kept like an auditor's: billed in the period it verifies.
    assert billed(invoice(store, this_month(), finalize=False)) == [
        (this_month(), "outcomes", "1", "0.99")
    ]
    with pytest.raises(OutcomeError, match="is verified: a judge decides pending claims"):
        judges.judge_outcome(store, "o1")


@pytest.mark.slow
def test_a_judge_that_times_out_or_fails_leaves_the_claim_pending(tmp_path: Path) -> None:
    store = ledger(tmp_path, command_judge(timeout="1s"))
    claims(store, "o-sleep", "o-crash", "o-garbage")
    started = time.monotonic()
    with pytest.raises(JudgeFailed, match="o-sleep stays pending: the judge did not answer"):
        judges.judge_outcome(store, "o-sleep")
    assert time.monotonic() - started < 15  # killed at its timeout, not waited for
    with pytest.raises(JudgeFailed, match="exited with status 3: the judge's model is unre"):
        judges.judge_outcome(store, "o-crash")
    with pytest.raises(JudgeFailed, match="answered no JSON verdict"):
        judges.judge_outcome(store, "o-garbage")
    for claim in ("o-sleep", "o-crash", "o-garbage"):
        assert status(store, claim) == ("claimed", "rule", None)
    assert store.verdicts_for(["o-sleep", "o-crash", "o-garbage"]) == {}
    assert billed(invoice(store, "2026-10")) == [("2026-10", "outcomes", "0", "0.00")]
    result = runner.invoke(app, ["--db", str(tmp_path / "l.db"), "outcomes", "judge"])
    assert result.exit_code == 1
    assert "o-crash: outcome o-crash stays pending: the judge exited with status 3" in (
        result.stderr
    )


class _Judge(http.server.BaseHTTPRequestHandler):
    """A judge endpoint: accepts a claim ending in "1", answers 500 for "500", sleeps for
    "sleep", rejects the others."""

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        claim = request["outcome"]["id"]
        if claim.endswith("sleep"):
            time.sleep(3)
        if claim.endswith("500"):
            self.send_response(500)
            self.end_headers()
            return
        verdict = "accept" if claim.endswith("1") else "reject"
        body = json.dumps({"verdict": verdict, "reason": f"{claim} read"}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except BrokenPipeError:  # the caller gave up at its timeout
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def endpoint() -> Iterator[str]:
    yield from _served(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Judge), "http")


def _served(server: http.server.ThreadingHTTPServer, scheme: str) -> Iterator[str]:
    """The judge's URL while `server` answers on a thread; shut down after."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"{scheme}://127.0.0.1:{server.server_address[1]}/verify"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_a_judge_at_an_endpoint(tmp_path: Path, endpoint: str) -> None:
    store = ledger(tmp_path, automated_resolution(f"{{url: '{endpoint}', timeout: 1s}}"))
    claims(store, "o1", "o2", "o-500", "o-sleep")
    assert judges.judge_outcome(store, "o1").lifecycle.status == "verified"
    assert judges.judge_outcome(store, "o2").lifecycle.status == "rejected"
    with pytest.raises(JudgeFailed, match="the judge answered HTTP 500"):
        judges.judge_outcome(store, "o-500")
    with pytest.raises(JudgeFailed, match="did not answer within 1s"):
        judges.judge_outcome(store, "o-sleep")
    assert status(store, "o-sleep")[0] == status(store, "o-500")[0] == "claimed"
    assert status(store, "o1") == ("verified", "judge", "o1 read")


def test_a_judge_is_not_run_before_a_claim_is_due_or_without_one(tmp_path: Path) -> None:
    """Refused before any process is started: the checks come first."""
    store = ledger(tmp_path, automated_resolution("{command: [/nonexistent/judge]}"))
    now = dt.datetime.now(dt.UTC)
    claims(store, "o1", at=iso(now - dt.timedelta(hours=2)))
    assert ingest(store, signal("s1", "message.received", iso(now), task="t0")).clean
    with pytest.raises(OutcomeError, match="is due for its judge from"):
        judges.judge_outcome(store, "o1")
    (tmp_path / "b").mkdir()
    other = ledger(tmp_path / "b", contract=automated_resolution("{command: [j]}").replace(
        "  inactivity: 72h\n  judge: {command: [j]}\n", "  confirm: true\n"
    ))  # fmt: skip
    claims(other, "o1")
    with pytest.raises(OutcomeError, match="names no contract with a judge"):
        judges.judge_outcome(other, "o1")
    # Once due, a judge that cannot run leaves the claim pending.
    assert ingest(
        store,
        tool_usage("u8", task="t8", time="2026-10-01T00:00:00Z", customer="c"),
        outcome("o8", "t8", "c", time="2026-10-02T00:00:00Z", value=None),
    ).clean
    with pytest.raises(JudgeFailed, match="'/nonexistent/judge' cannot run"):
        judges.judge_outcome(store, "o8")
    assert status(store, "o8") == ("claimed", "rule", None)


@pytest.mark.slow
def test_a_judge_that_floods_its_output_is_stopped_at_the_cap(tmp_path: Path) -> None:
    """It writes 64 MB, then waits: payoff stops reading past 64 KB, kills it, and leaves
    the claim pending at once, not at the judge's timeout."""
    store = ledger(tmp_path, command_judge(timeout="8s"))
    claims(store, "o-flood")
    started = time.monotonic()
    with pytest.raises(JudgeFailed, match="o-flood stays pending: the judge answered more than"):
        judges.judge_outcome(store, "o-flood")
    assert time.monotonic() - started < 6
    assert status(store, "o-flood") == ("claimed", "rule", None)


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key, made here."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "judge.pem", directory / "judge.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


class _DrippingJudge(http.server.BaseHTTPRequestHandler):
    """A judge over TLS: answers "drip" claims a byte every 0.2 s (about 12 s in all, each
    read well within a 1 s socket timeout), "flood" claims with 1 MB, the others at once."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        claim = request["outcome"]["id"]
        body = json.dumps({"verdict": "accept", "reason": f"{claim} read"}).encode()
        if claim.endswith("flood"):
            body = b" " * 1_048_576 + body
        try:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.flush()
            if not claim.endswith("drip"):
                self.wfile.write(body)
                return
            for byte in body:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the caller gave up at its deadline
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    cert_file, key_file = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # payoff trusts this certificate
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _DrippingJudge)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from _served(server, "https")


@pytest.mark.slow
def test_an_https_judges_timeout_is_a_deadline_for_the_whole_exchange(
    tmp_path: Path, tls_endpoint: str
) -> None:
    store = ledger(tmp_path, automated_resolution(f"{{url: '{tls_endpoint}', timeout: 1s}}"))
    claims(store, "o1", "o-drip", "o-flood")
    assert judges.judge_outcome(store, "o1").lifecycle.status == "verified"
    started = time.monotonic()
    with pytest.raises(JudgeFailed, match="o-drip stays pending: the judge did not answer within"):
        judges.judge_outcome(store, "o-drip")
    assert time.monotonic() - started < 3  # its deadline, not a 12 s drip
    with pytest.raises(JudgeFailed, match="o-flood stays pending: the judge answered more than"):
        judges.judge_outcome(store, "o-flood")
    assert status(store, "o-drip") == status(store, "o-flood") == ("claimed", "rule", None)
    assert status(store, "o1") == ("verified", "judge", "o1 read")


@pytest.mark.slow
def test_a_judge_beside_its_contract_runs_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The example contract names its judge `./judges/resolution_judge.py`: a path from the
    contract file's directory, made absolute when the contract is applied."""
    example = REPO / "examples" / "contracts"
    library = tmp_path / "library"
    shutil.copytree(example / "judges", library / "judges")
    text = (example / "support.automated_resolution.yaml").read_text()
    assert "[python3, ./judges/resolution_judge.py]" in text
    text = text.replace("python3", json.dumps(sys.executable))
    store = ledger(library, text)
    (contract,) = store.list_contracts()
    judge_script = str(library.resolve() / "judges" / "resolution_judge.py")
    assert contract.body["verification"]["judge"]["command"] == [sys.executable, judge_script]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    opened = {"conversation_id": "c-1", "escalated": False, "last_customer_message": "Thanks"}
    salt = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert ingest(
        store,
        tool_usage("u1", task="t1", time="2026-10-01T00:00:00Z", customer="c"),
        outcome(
            "o1", "t1", "c", time="2026-10-02T00:00:00Z", value=None,
            type="ticket.automated_resolution",
            evidence_digest=evidence_digest(opened, salt),
        ),
    ).clean  # fmt: skip
    answer = evidence.open_evidence(store, "o1", opened, salt, "admin")
    assert answer["judge"]["verdict"] == "accept", answer["judge"]
    assert answer["outcome"]["status"] == "verified"


def test_the_same_contract_applied_from_another_directory_is_refused_naming_both_judges(
    tmp_path: Path,
) -> None:
    """A `./` judge path is taken from the contract file's directory: applied from another
    directory, the same file names another program. The stored version keeps the judge it
    runs; the refusal says so, naming both, rather than only "a different body"."""
    example = REPO / "examples" / "contracts"
    first, second = tmp_path / "first", tmp_path / "second"
    for place in (first, second):
        shutil.copytree(example, place)
    store = open_store(tmp_path / "l.db")
    assert contracts.apply_contract(store, first / "support.automated_resolution.yaml")[1]
    assert not contracts.apply_contract(store, first / "support.automated_resolution.yaml")[1]
    moved = re.escape(
        f"support.automated_resolution@1 exists with a different judge: the stored version "
        f"runs python3 {first.resolve()}/judges/resolution_judge.py, this file's runs python3 "
        f"{second.resolve()}/judges/resolution_judge.py"
    )
    with pytest.raises(ContractConflict, match=moved):
        contracts.apply_contract(store, second / "support.automated_resolution.yaml")
    judge = re.compile(r"(\n\s+timeout: )\S+")
    text = (second / "support.automated_resolution.yaml").read_text()
    assert judge.search(text), "the example judge names its timeout"
    (second / "support.automated_resolution.yaml").write_text(judge.sub(r"\g<1>59s", text, 1))
    with pytest.raises(ContractConflict, match="exists with a different body"):
        contracts.apply_contract(store, second / "support.automated_resolution.yaml")
