"""What one request costs a live `payoff serve` in memory and time, legitimate or hostile.

    python -m bench.request_memory            # prints a Markdown table (Linux: reads /proc)

Each body is sent to a fresh server with the default limits (32 MiB, 10,000 records); the
peak resident memory of the server process and of its builder process is read from
/proc/PID/status (VmHWM) after resetting it (/proc/PID/clear_refs). docs/server.md states
the multiple of the body limit these figures support.
"""

from __future__ import annotations

import gzip
import http.client
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from bench.server import _server

MIB = 1024 * 1024
BODY_LIMIT = 32 * MIB
RECORDS = 10_000
PAD = "x" * 3000  # 10,000 records of about 3 KB: a body near the limit
KEYLESS_CONNECTIONS = 48


def _record(number: int) -> dict[str, object]:
    return {
        "id": f"e{number}", "time": "2026-11-03T10:00:00Z", "customer": "acme",
        "task": f"t{number // 10}", "provider": "openai", "model": "gpt-4o",
        "input_tokens": 1200, "output_tokens": 300, "attributes": {"pad": PAD},
    }  # fmt: skip


def _lines() -> bytes:
    return b"\n".join(msgspec.json.encode(_record(n)) for n in range(RECORDS))


BODIES: dict[str, Callable[[], tuple[bytes, dict[str, str]]]] = {
    "10,000 records, JSON Lines": lambda: (_lines(), {}),
    "10,000 records, a JSON array": lambda: (
        msgspec.json.encode([_record(n) for n in range(RECORDS)]),
        {},
    ),
    "10,000 records, gzip": lambda: (gzip.compress(_lines()), {"Content-Encoding": "gzip"}),
    "32 MiB of `{}` lines": lambda: (b"{}\n" * (BODY_LIMIT // 3), {}),
    "32 MiB array of `{}`": lambda: (b"[" + b"{}," * (BODY_LIMIT // 3 - 1) + b"{}]", {}),
    "gzip bomb (32 MiB of `{}` lines)": lambda: (
        gzip.compress(b"{}\n" * (BODY_LIMIT // 3)),
        {"Content-Encoding": "gzip"},
    ),
}


def _status_mib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError(f"no {field} for {pid}")


def _processes(pid: int) -> list[int]:
    """The server and its children (the builder process, and its helper)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def _reset(pids: list[int]) -> dict[int, int]:
    time.sleep(1)  # the server settles (the builder starts at start-up)
    for pid in pids:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    return {pid: _status_mib(pid, "VmRSS") for pid in pids}


def _post(port: int, key: str, body: bytes, headers: dict[str, str]) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request("POST", "/v1/events", body, {"Authorization": f"Bearer {key}", **headers})
    status = connection.getresponse().status
    connection.close()
    return status


def _keyless(port: int) -> None:
    head = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % BODY_LIMIT
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head)
        for _ in range(BODY_LIMIT // 65536):
            sock.sendall(b"x" * 65536)
        sock.recv(64)


def measure(name: str, folder: Path) -> str:
    with _server(folder) as (port, key):
        pid = _processes_of_port_owner(folder)
        pids = _processes(pid)
        before = _reset(pids)
        started = time.monotonic()
        if name == "keyless":
            threads = [
                threading.Thread(target=_keyless, args=(port,)) for _ in range(KEYLESS_CONNECTIONS)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            status, label = 401, f"{KEYLESS_CONNECTIONS} uploads of 32 MiB without a key"
        else:
            body, headers = BODIES[name]()
            status, label = _post(port, key, body, headers), name
        seconds = time.monotonic() - started
        growth = [_status_mib(p, "VmHWM") - before[p] for p in pids]
    server, builder = growth[0], max(growth[1:], default=0)
    return f"| {label} | {status} | {seconds:.1f} | {server} | {builder} |"


def _processes_of_port_owner(folder: Path) -> int:
    """The pid of the `payoff serve` that bench.server started for `folder`."""
    for status in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = status.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve" in command and str(folder / "served.db").encode() in command:
            return int(status.parent.name)
    raise RuntimeError("payoff serve not found")


def main() -> None:
    print("| request | status | seconds | server MiB | builder MiB |")
    print("|---|---|---|---|---|")
    for name in [*BODIES, "keyless"]:
        with tempfile.TemporaryDirectory() as folder:
            print(measure(name, Path(folder)), flush=True)


if __name__ == "__main__":
    main()
