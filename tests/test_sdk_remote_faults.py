"""The remote sink under faults: a full disk, fork(), odd answers, slow fsyncs."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

from api_support import free_port

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
