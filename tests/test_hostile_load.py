"""A real `payoff serve` fed hostile bodies: its memory stays bounded, others keep being served.

Three loads, each while a probe client sends a small batch of records every 50 ms:

- one body of tiny records at the body limit (millions of lines), with a valid key;
- CONNECTIONS clients with no key at all, each sending a body at the limit at once;
- (long form) a client that sends half a request line and then nothing, to see whether the
  server ever closes the connection.

Figures: the server's peak resident memory (VmHWM, its builder process included) above its
resting size, as a multiple of the body limit; the slowest probe answer; how long the
half-sent request was held open.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import msgspec
import pytest

from api_support import Keys, LiveServer, live_server, prepare_ledger, usage
from crash_harness import descendants
from reliability import LONG, record, size

# A live server, measured through Linux's /proc.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="reads memory figures from /proc"),
]

MIB = 1024 * 1024
CONNECTIONS = 48
MEMORY_MULTIPLE = 8
"""Peak memory per request the server may take, in body limits (a bound the server states)."""
SLACK_MIB = 64
"""Resident memory a load may add beside that (allocator pools, thread stacks)."""
PROBE_LIMIT_S = 2.0
"""The slowest answer a small batch may get while the server is fed hostile bodies."""
SLOW_CLIENT_WAIT_S = 30


def _kib(pid: int, field: str) -> int:
    """A memory figure of a process from /proc, in KiB (0 once it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_mib(server: LiveServer) -> float:
    """The peak resident memory of the server and its processes, added up, in MiB."""
    pids = [server.process.pid, *descendants(server.process.pid)]
    return sum(_kib(pid, "VmHWM") for pid in pids) / 1024


def reset_peak(server: LiveServer) -> None:
    """Start the peaks over from the present size ("5" to clear_refs, Linux 4.0 and later)."""
    for pid in [server.process.pid, *descendants(server.process.pid)]:
        # Where this is refused, the peaks go back to the start: an upper bound, still.
        with contextlib.suppress(OSError):
            Path(f"/proc/{pid}/clear_refs").write_text("5")


def resting_mib(server: LiveServer) -> float:
    pids = [server.process.pid, *descendants(server.process.pid)]
    return sum(_kib(pid, "VmRSS") for pid in pids) / 1024


class Probe:
    """A client sending one small batch every 50 ms; the slowest answer it got."""

    def __init__(self, server: LiveServer, keys: Keys) -> None:
        self.server, self.keys = server, keys
        self.slowest_s, self.failures, self.sent = 0.0, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)

    def _run(self) -> None:
        with httpx.Client(base_url=self.server.url, timeout=60) as http:
            while not self._stop.is_set():
                self.sent += 1
                body = msgspec.json.encode([usage(f"probe-{time.monotonic_ns()}")])
                started = time.monotonic()
                try:
                    answer = http.post("/v1/events", content=body,
                                       headers=self.keys.header(self.keys.ingest))  # fmt: skip
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                self.failures += not ok
                self.slowest_s = max(self.slowest_s, time.monotonic() - started)
                time.sleep(0.05)


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[tuple[LiveServer, Keys, int]]:
    limit = size("MEMORY_BODY_MIB") * MIB
    db = tmp_path / "l.db"
    keys = prepare_ledger(db)
    args = ("--max-body-bytes", str(limit), "--log-level", "warning")
    with live_server(db, tmp_path / "serve.log", *args) as server:
        httpx.post(f"{server.url}/v1/events", content=msgspec.json.encode([usage("warm-up")]),
                   headers=keys.header(keys.ingest), timeout=60)  # fmt: skip
        yield server, keys, limit


def _tiny_records(limit: int) -> bytes:
    line = b"{}\n"  # the smallest line that is a JSON object: the most lines per byte
    return line * (limit // len(line))


def _send(url: str, body: bytes, headers: dict[str, str]) -> int:
    try:
        return httpx.post(url, content=body, headers=headers, timeout=120).status_code
    except httpx.HTTPError:
        return 0


def slow_client_held_s(server: LiveServer, wait_s: float) -> float:
    """How long the server keeps a connection whose request line never ends (up to wait_s)."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=wait_s + 5) as sock:
        sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Le")
        started = time.monotonic()
        sock.settimeout(wait_s)
        with contextlib.suppress(TimeoutError):
            sock.recv(1024)  # b"" (closed) or an answer: the server gave up on it
        return round(time.monotonic() - started, 1)


def test_hostile_bodies_take_bounded_memory_and_others_keep_being_served(
    hostile_server: tuple[LiveServer, Keys, int],
) -> None:
    server, keys, limit = hostile_server
    resting = resting_mib(server)
    body = _tiny_records(limit)
    events = f"{server.url}/v1/events"
    with Probe(server, keys) as probe:
        reset_peak(server)
        tiny = _send(events, body, keys.header(keys.ingest))
        tiny_peak = peak_mib(server)
        reset_peak(server)
        with ThreadPoolExecutor(CONNECTIONS) as pool:
            keyless = list(pool.map(lambda _: _send(events, body, {}), range(CONNECTIONS)))
        keyless_peak = peak_mib(server)
    peak = max(tiny_peak, keyless_peak)
    held = slow_client_held_s(server, SLOW_CLIENT_WAIT_S) if LONG else None
    limit_mib = limit / MIB
    figures = {
        "body_limit_mib": limit_mib,
        "resting_mib": round(resting),
        "peak_above_resting_mib": round(peak - resting),
        "tiny_records_peak_x_limit": round((tiny_peak - resting) / limit_mib, 1),
        "keyless_peak_x_limit": round((keyless_peak - resting) / limit_mib, 1),
        "tiny_records_answer": tiny,
        "keyless_answers": sorted(set(keyless)),
        "slowest_probe_s": round(probe.slowest_s, 2),
        "probe_failures": probe.failures,
        "half_sent_request_held_s": held,
    }
    problems = []
    bound = MEMORY_MULTIPLE * limit_mib + SLACK_MIB
    if peak - resting > bound:
        problems.append(f"peak {peak - resting:.0f} MiB above resting, bound {bound:.0f}")
    if probe.slowest_s > PROBE_LIMIT_S or probe.failures:
        problems.append(f"the probe waited {probe.slowest_s:.1f} s; {probe.failures} failed")
    if set(keyless) != {401}:
        problems.append(f"keyless bodies answered {sorted(set(keyless))}, expected 401")
    if held is not None and held >= SLOW_CLIENT_WAIT_S:
        problems.append(f"a half-sent request was held {held} s")
    record("hostile load: memory and other clients", "memory per request bounded by "
           f"{MEMORY_MULTIPLE}x the body limit; keyless bodies 401; others served within "
           f"{PROBE_LIMIT_S} s", figures, problems)  # fmt: skip
    assert not problems, f"{problems}; figures {figures}"
