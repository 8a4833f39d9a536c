"""A real `payoff serve` on loopback against hostile clients: bodies without a key, bodies of
millions of tiny records, compressed bombs, clients that send slowly or never finish, more
connections than it serves, and a normal client that must be served throughout."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import msgspec
import pytest

from api_support import Keys, LiveServer, live_server, prepare_ledger, usage

# Every test here starts a live server: seconds each.
pytestmark = pytest.mark.slow

MIB = 1024 * 1024
BODY_LIMIT = 32 * MIB  # the default --max-body-bytes
PROC = Path("/proc/self/clear_refs").exists()


def _port(server: LiveServer) -> int:
    return int(server.url.rsplit(":", 1)[1])


def _peak_mib(pid: int) -> int:
    """The process's peak resident memory since the last `_reset_peak` (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM line")


def _resident_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS line")


def _reset_peak(pid: int) -> int:
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _resident_mib(pid)


def _answer_of(sock: socket.socket, timeout_s: float = 10) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(timeout_s)
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@contextmanager
def _connections(port: int, count: int) -> Iterator[list[socket.socket]]:
    opened = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
    try:
        yield opened
    finally:
        for sock in opened:
            sock.close()


def _keyless_upload(
    port: int, stop: threading.Event, refused: list[bytes], size: int = BODY_LIMIT
) -> None:
    """Post bodies of `size` bytes without a key, one after the other, until told to stop."""
    head = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    chunk = b"x" * 65536
    while not stop.is_set():
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(head)
            try:
                for _ in range(size // len(chunk)):
                    sock.sendall(chunk)
            except OSError:  # the server answered and closed: it reads none of it
                pass
            refused.append(_answer_of(sock)[:12])


@pytest.mark.skipif(not PROC, reason="reads the server's peak memory from Linux /proc")
def test_hostile_bodies_are_refused_in_bounded_memory_and_time(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys: Keys = prepare_ledger(db)
    ingest = keys.header(keys.ingest)
    tiny_lines = b"{}\n" * (BODY_LIMIT // 3)
    bodies = {
        "JSON Lines of tiny records": (tiny_lines, ingest),
        "an array of tiny records": (b"[" + b"{}," * (BODY_LIMIT // 3 - 1) + b"{}]", ingest),
        "a gzip bomb": (gzip.compress(tiny_lines), {**ingest, "Content-Encoding": "gzip"}),
    }
    with live_server(db, log) as server:
        pid = server.process.pid
        for name, (body, headers) in bodies.items():
            before = _reset_peak(pid)
            started = time.monotonic()
            answer = httpx.post(
                f"{server.url}/v1/events", content=body, headers=headers, timeout=60
            )
            took = time.monotonic() - started
            assert answer.status_code == 413, (name, answer.text)
            assert took < 10, f"{name}: {took:.1f} s"
            # The body, and at most one copy of it: never a structure per tiny record.
            assert _peak_mib(pid) - before <= 3 * BODY_LIMIT // MIB, name
            assert "more than 10000 records" in answer.json()["detail"]

        before = _reset_peak(pid)
        stop, refused = threading.Event(), []
        uploads = [
            threading.Thread(target=_keyless_upload, args=(_port(server), stop, refused))
            for _ in range(16)
        ]
        for thread in uploads:
            thread.start()
        time.sleep(2)
        stop.set()
        for thread in uploads:
            thread.join(timeout=60)
        assert refused and set(refused) == {b"HTTP/1.1 401"}
        assert _peak_mib(pid) - before <= 16, "keyless bodies must not be read"


def test_slow_and_keyless_clients_do_not_hold_up_the_others(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    options = ("--header-timeout", "1", "--body-timeout", "2")
    with live_server(db, log, *options) as server:
        port = _port(server)
        stop, refused = threading.Event(), []
        keyless = [
            threading.Thread(target=_keyless_upload, args=(port, stop, refused, 4 * MIB))
            for _ in range(4)
        ]
        for thread in keyless:
            thread.start()
        with (
            _connections(port, 20) as slow_headers,
            _connections(port, 10) as slow_bodies,
            _connections(port, 1) as (long_headers,),
            _connections(port, 1) as (unread_body,),
        ):
            # A body no route reads, sent a byte at a time for ever: answered, then closed.
            unread_body.sendall(
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            trickling = threading.Event()
            trickle = threading.Thread(target=_trickle, args=(unread_body, trickling))
            trickle.start()
            for sock in slow_headers:  # headers begun, never ended
                sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            # Headers past the bound, never ended; sent at once, so the server reads them all
            # before it answers and closes (unread bytes would turn its close into a reset).
            long_headers.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 70_000)
            for sock in slow_bodies:  # a valid key, and a body that stops after 10 bytes
                sock.sendall(
                    b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                    b"Authorization: Bearer " + keys.ingest.encode() + b"\r\n\r\n" + b"[" * 10
                )
            slowest = _serve_a_normal_client(server, keys, seconds=3)
            stop.set()
            for thread in keyless:
                thread.join(timeout=60)
            assert slowest < 2, f"a normal request took {slowest:.2f} s"
            for sock in slow_headers:
                assert _answer_of(sock).startswith(b"HTTP/1.1 408 Request Timeout")
            try:  # closed while the client still sends: the trickle goes on until read
                assert _answer_of(unread_body).startswith(b"HTTP/1.1 200 OK")
            finally:
                trickling.set()
                trickle.join(timeout=10)
            assert _answer_of(long_headers).startswith(
                b"HTTP/1.1 431 Request Header Fields Too Large"
            )
            for sock in slow_bodies:
                answer = _answer_of(sock)
                assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer
                assert answer.endswith(b'{"detail":"the body did not arrive within 2 s"}')
        assert refused and set(refused) == {b"HTTP/1.1 401"}


def _trickle(sock: socket.socket, stop: threading.Event) -> None:
    """Send a chunk of one byte every 0.2 s until the server closes or the test stops."""
    while not stop.wait(0.2):
        try:
            sock.sendall(b"1\r\nx\r\n")
        except OSError:
            return


def _serve_a_normal_client(server: LiveServer, keys: Keys, seconds: float) -> float:
    """A client writing records and reading usage for `seconds`; its slowest answer, in s."""
    slowest, number = 0.0, 0
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=server.url, timeout=10) as http:
        while time.monotonic() < deadline:
            started = time.monotonic()
            body = msgspec.json.encode([usage(f"n{number}", task=f"t{number}")])
            sent = http.post("/v1/events", content=body, headers=keys.header(keys.ingest))
            read = http.get("/v1/usage", headers=keys.header(keys.admin))
            slowest = max(slowest, time.monotonic() - started)
            assert (sent.status_code, read.status_code) == (200, 200), sent.text
            assert sent.json()["accepted"] == 1
            number += 1
            time.sleep(0.05)
    assert number >= 5
    return slowest


def test_connections_beyond_the_bound_are_503_with_retry_after(tmp_path: Path) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    with live_server(db, log, "--max-connections", "3") as server:
        admin = keys.header(keys.admin)
        with _connections(_port(server), 3):
            time.sleep(0.2)  # the server has taken them
            busy = httpx.get(f"{server.url}/v1/usage", headers=admin, timeout=10)
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "1"
            assert busy.json()["detail"].startswith("busy: ")
        time.sleep(0.2)
        assert httpx.get(f"{server.url}/v1/usage", headers=admin, timeout=10).status_code == 200
