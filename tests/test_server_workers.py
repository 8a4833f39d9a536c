"""`payoff serve --workers N`: the workers end when their supervisor is killed, so the port
is free again and a new server starts on it."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import httpx
import pytest

from api_support import free_port, live_server, prepare_ledger, start_server

# Every test here starts a live server: seconds each.
pytestmark = pytest.mark.slow


def _children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()  # a zombie has ended


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="lists workers from Linux /proc")
def test_workers_end_when_their_supervisor_is_killed_and_the_port_is_free_again(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    port = free_port()
    server = start_server(db, log, "--workers", "2", port=port)
    workers = _children(server.process.pid)
    try:
        assert len(workers) >= 2  # two workers (and nothing else that lives on)
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        server.kill()  # SIGKILL: the supervisor runs no handler at all

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (any(map(_alive, workers)) or not _port_free(port)):
            time.sleep(0.1)
        assert not [pid for pid in workers if _alive(pid)], log.read_text()[-2000:]
        assert _port_free(port)
        with live_server(db, log, port=port) as restarted:
            admin = keys.header(keys.admin)
            assert httpx.get(f"{restarted.url}/v1/usage", headers=admin, timeout=10).is_success
    finally:
        for pid in workers:  # never leave a worker behind, whatever failed
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
