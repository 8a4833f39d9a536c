"""The remote sink under faults: a full disk, fork(), odd answers, slow fsyncs."""

from __future__ import annotations

import http.server
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import payoff
from api_support import free_port, live_server, prepare_ledger, start_server
from payoff.sdk.spool import Spool

# Every test here starts processes or a live server: seconds each.
pytestmark = pytest.mark.slow

FULL_DISK_AGENT = """
import resource, signal, payoff
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
meter = payoff.Meter("http://127.0.0.1:{port}", api_key="k", spool={spool!r},
                     spool_interval_s=0.05, timeout_s=0.5)
resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))  # the disk is full at 20 kB
with meter.task(customer="acme") as task:
    for _ in range(300):
        task.tool("lookup", cost="0.001")
print("recorded", flush=True)
"""


def run_agent(source: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(source)],
        capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip


def test_exit_with_a_full_spool_disk_reports_the_lost_records_and_does_not_hang(
    tmp_path: Path,
) -> None:
    source = FULL_DISK_AGENT.format(port=free_port(), spool=str(tmp_path / "spool"))
    started = time.monotonic()
    agent = run_agent(source)
    assert agent.returncode == 0, agent.stderr[-3000:]
    assert time.monotonic() - started < 30
    assert "recorded" in agent.stdout
    assert "could not be spooled" in agent.stderr, agent.stderr[-3000:]


FORK_AGENT = """
import os, sys, time, payoff
meter = payoff.Meter("{url}", api_key="{key}", spool={spool!r}, spool_interval_s=0.05)
with meter.task(customer="acme", type="parent") as task:
    task.tool("lookup", cost="0.001")
pid = os.fork()
if pid == 0:
    with meter.task(customer="globex", type="child") as task:
        for _ in range(10):
            task.tool("lookup", cost="0.001")
    sys.exit(0)  # the Meter closes at exit, in the child as in any process
started = time.monotonic()
while time.monotonic() - started < 20:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
        print("child", os.waitstatus_to_exitcode(status), round(time.monotonic() - started))
        break
    time.sleep(0.05)
else:
    os.kill(pid, 9)
    print("child hung")
with meter.task(customer="acme", type="parent") as task:
    task.tool("lookup", cost="0.001")
print("parent flushed", meter.flush(20))
"""


def test_a_meter_made_before_fork_delivers_the_childs_records_and_the_child_exits(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    with live_server(db, log) as server:
        source = FORK_AGENT.format(url=server.url, key=keys.ingest, spool=str(tmp_path / "sp"))
        agent = run_agent(source)
    assert agent.returncode == 0, agent.stderr[-3000:]
    lines = agent.stdout.splitlines()
    assert lines[0].startswith("child 0 "), agent.stdout + agent.stderr[-3000:]
    assert int(lines[0].split()[2]) <= 6
    assert lines[1] == "parent flushed True"
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT customer, count(*) FROM events GROUP BY customer"))
    assert rows == {"acme": 2, "globex": 10}


class HtmlHandler(http.server.BaseHTTPRequestHandler):
    """A proxy's error page answered with status 200: not the server's JSON."""

    posts = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).posts += 1
        body = b"<html><body>Gateway says hello</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_non_json_200_is_retried_and_the_records_reach_the_real_server(
    tmp_path: Path,
) -> None:
    db, log = tmp_path / "l.db", tmp_path / "serve.log"
    keys = prepare_ledger(db)
    port = free_port()
    impostor = http.server.HTTPServer(("127.0.0.1", port), HtmlHandler)
    threading.Thread(target=impostor.serve_forever, daemon=True).start()
    meter = payoff.Meter(
        f"http://127.0.0.1:{port}", api_key=keys.ingest, spool=tmp_path / "spool",
        spool_interval_s=0.02, timeout_s=2, close_at_exit=False,
    )  # fmt: skip
    with meter.task(customer="acme") as task:
        task.tool("lookup", cost="0.001")
    deadline = time.monotonic() + 10
    while HtmlHandler.posts < 2 and time.monotonic() < deadline:
        time.sleep(0.02)  # the first answer was HTML: the sender must try again
    impostor.shutdown()
    impostor.server_close()
    assert HtmlHandler.posts >= 2
    assert [t.name for t in threading.enumerate() if t.name == "payoff-sender"]
    server = start_server(db, log, port=port)
    try:
        assert meter.flush(timeout_s=30)
        assert meter.close()
    finally:
        server.process.terminate()
        server.process.wait(timeout=10)
    with sqlite3.connect(db) as conn:
        assert conn.execute(
            "SELECT count(*) FROM events WHERE task = ?", (task.id,)
        ).fetchone() == (1,)
    assert meter.dead_letters.count == 0


def test_flush_and_close_wait_for_records_the_spooler_is_still_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_append = Spool.append

    def slow_append(self: Spool, records: list[bytes]) -> None:
        time.sleep(0.4)  # a slow write and fsync, as on a busy disk
        real_append(self, records)

    monkeypatch.setattr(Spool, "append", slow_append)
    meter = payoff.Meter(
        f"http://127.0.0.1:{free_port()}", api_key="k", spool=tmp_path / "spool",
        spool_interval_s=0.05, timeout_s=0.5, close_at_exit=False,
    )  # fmt: skip
    with meter.task(customer="acme") as task:
        task.tool("lookup", cost="0.001")
    time.sleep(0.15)  # the spooler has taken the queue and is writing it
    assert not meter.flush(timeout_s=0.1)  # nothing is listening: nothing was delivered
    assert not meter.close(timeout_s=1)
    spooled = b"".join(path.read_bytes() for path in (tmp_path / "spool").glob("spool-*.jsonl"))
    assert spooled.count(b"\n") == 3 and task.id.encode() in spooled


TORN_WRITE = """
import json, resource, signal
from pathlib import Path
from payoff.sdk.spool import Spool
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
spool = Spool(Path({path!r}))
def batch(first, last):
    return [json.dumps({{"n": n, "pad": "x" * 100}}).encode() for n in range(first, last)]
spool.append(batch(0, 10))
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (spool._size + 500, hard))  # the disk fills up
kept = list(range(10))
try:
    spool.append(batch(10, 20))  # about 1,100 bytes: only part of it fits
except OSError:
    pass
else:
    kept += range(10, 20)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # the disk is freed
spool.append(batch(20, 25))
kept += range(20, 25)
records, end = spool.read(1000)
print(json.dumps([json.loads(record)["n"] for record in records]))
print(json.dumps(kept))
print(end, Path({path!r}).stat().st_size)
"""


def test_a_write_cut_short_by_a_full_disk_leaves_the_spool_aligned(tmp_path: Path) -> None:
    agent = run_agent(TORN_WRITE.format(path=str(tmp_path / "spool-x.jsonl")))
    assert agent.returncode == 0, agent.stderr[-3000:]
    read, kept, sizes = agent.stdout.splitlines()
    assert read == kept
    end, size = sizes.split()
    assert end == size


def test_a_record_already_queued_is_not_refused_when_the_spool_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(self: Spool, records: list[bytes]) -> None:
        raise OSError(28, "No space left on device")

    real_append = Spool.append
    monkeypatch.setattr(Spool, "append", full_disk)
    meter = payoff.Meter(
        f"http://127.0.0.1:{free_port()}", api_key="k", spool=tmp_path / "spool",
        queue_records=2, spool_interval_s=60, timeout_s=0.5, close_at_exit=False,
    )  # fmt: skip
    task = meter.task(customer="acme")
    task.open()
    for _ in range(3):
        task.tool("lookup", cost="0.001")  # the queue is full: no OSError to the caller
    assert len(meter.sink._queue) == 4  # type: ignore[attr-defined]
    monkeypatch.setattr(Spool, "append", real_append)  # the disk is freed
    assert not meter.close(timeout_s=0.5)
    spooled = b"".join(path.read_bytes() for path in (tmp_path / "spool").glob("spool-*.jsonl"))
    assert spooled.count(b"\n") == 4
