"""`payoff ingest` of N usage records, against a bare sqlite3 baseline in the same run.

Each repeat runs `payoff --db FRESH ingest FILE --json` as a child process (wall time from
start to exit, peak RSS from the child's own rusage), then the baseline (`bench.bare`)
inserts the same rows into a fresh file; repeats alternate so that noise hits both alike.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from bench.workload import WORK

PAYOFF = Path(sys.executable).with_name("payoff")
BYTES_PER_KIB = 1024
SAMPLE_SECONDS = 0.02


@dataclass(frozen=True)
class IngestResult:
    records: int
    payoff_seconds: list[float]
    bare_seconds: list[float]
    peak_rss_bytes: list[int]
    parent_peak_rss_bytes: int  # a floor under the child's figure (see bench/bare.py)

    @property
    def payoff_rate(self) -> float:
        return self.records / statistics.median(self.payoff_seconds)

    @property
    def bare_rate(self) -> float:
        return self.records / statistics.median(self.bare_seconds)

    @property
    def ratio(self) -> float:
        return self.payoff_rate / self.bare_rate


def _tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, summed (from /proc)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            for task in Path(f"/proc/{current}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * BYTES_PER_KIB
    return total


class _TreeRssSampler(threading.Thread):
    """Samples the summed RSS of payoff's processes (its builder worker included).

    A forked worker shares pages with its parent, which this sum counts twice: the figure is
    an upper bound of the memory the ingest holds.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            self.peak = max(self.peak, _tree_rss_bytes(self.pid))


def run_payoff(path: Path, folder: Path, records: int) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes of all its processes) of one `payoff ingest`."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        out, err = Path(scratch) / "stdout", Path(scratch) / "stderr"
        command = [str(PAYOFF), "--db", f"{scratch}/ledger.db", "ingest", str(path), "--json"]
        # Output goes to files, not pipes: a child writing many problems would fill a pipe.
        with out.open("wb") as stdout, err.open("wb") as stderr:
            start = time.perf_counter()
            child = subprocess.Popen(command, stdout=stdout, stderr=stderr)
            sampler = _TreeRssSampler(child.pid)
            sampler.start()
            _, status, usage = os.wait4(child.pid, 0)
            seconds = time.perf_counter() - start
            sampler.done.set()
            sampler.join()
        child.returncode = os.waitstatus_to_exitcode(status)
        counts = json.loads(out.read_text() or "{}")
        if child.returncode != 0 or counts.get("accepted") != records:
            tail = err.read_text()[-2000:]
            raise RuntimeError(f"payoff ingest exited {child.returncode}, {counts}: {tail}")
    # The sampler may miss a short peak between samples; the kernel's own peak of the main
    # process cannot be missed. Report the larger.
    return seconds, max(sampler.peak, usage.ru_maxrss * BYTES_PER_KIB)


class BareWorker:
    """The baseline process: builds its rows once, then times one insert per `run()`."""

    def __init__(self, path: Path, folder: Path) -> None:
        command = [sys.executable, "-m", "bench.bare", str(path), str(folder)]
        cwd = Path(__file__).parent.parent
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=cwd
        )
        self.rows = int(self._reply().removeprefix("ready "))

    def _reply(self) -> str:
        stdout: IO[str] = self.process.stdout  # type: ignore[assignment]
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"bench.bare stopped (exit {self.process.wait()})")
        return line.strip()

    def run(self) -> float:
        stdin: IO[str] = self.process.stdin  # type: ignore[assignment]
        stdin.write("run\n")
        stdin.flush()
        return float(self._reply())

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait()


def measure(
    path: Path, records: int, repeats: int, log: Callable[[str], None] = print
) -> IngestResult:
    payoff_seconds, bare_seconds, peaks = [], [], []
    WORK.mkdir(exist_ok=True)
    # Ledgers go next to the workload, so both sides write to the same disk.
    with tempfile.TemporaryDirectory(dir=WORK) as folder:
        log("  building the baseline's rows with payoff's RowBuilder (not timed)...")
        bare = BareWorker(path, Path(folder))
        try:
            if bare.rows != records:
                raise RuntimeError(f"the baseline built {bare.rows} rows, not {records}")
            for repeat in range(1, repeats + 1):
                seconds, peak = run_payoff(path, Path(folder), records)
                payoff_seconds.append(seconds)
                peaks.append(peak)
                bare_seconds.append(bare.run())
                log(
                    f"  repeat {repeat}/{repeats}: payoff {seconds:.1f} s "
                    f"(peak RSS {peak / 1e6:.0f} MB), bare {bare_seconds[-1]:.1f} s"
                )
        finally:
            bare.close()
    parent_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * BYTES_PER_KIB
    return IngestResult(records, payoff_seconds, bare_seconds, peaks, parent_peak)


def main() -> None:
    import argparse

    from bench import workload

    parser = argparse.ArgumentParser(prog="python -m bench.ingest")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ids", choices=workload.IDS, default="random")
    parser.add_argument("--write", action="store_true", help="write its section of RESULTS.md")
    args = parser.parse_args()
    path = workload.path_for(args.records, ids=args.ids)
    result = measure(path, args.records, args.repeats)
    print(f"payoff / bare: {result.ratio:.2f}")
    if args.write and args.ids == "random":
        from bench.run import write_random_ingest_section

        print(f"wrote {write_random_ingest_section(result)}")


if __name__ == "__main__":
    main()
