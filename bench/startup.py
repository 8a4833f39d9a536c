"""Start time: `payoff --help` and `payoff tasks` on a small ledger, each in a fresh process.

A person waits for every command they type, so the command must answer before they notice:
the target is 0.3 s. Most of that time is imports, so the measure is wall time from process
start to exit, and a fresh process each run (nothing warm but the OS file cache, as for the
person at the terminal). The ledger holds LEDGER_TASKS tasks of two steps each. The CPU time
(user + system) of the same runs is kept beside it: on a shared machine the wall time also
counts the neighbours' work, the CPU time barely does.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec

LEDGER_TASKS = 100
RUNS = 15
TARGET_S = 0.3


@dataclass(frozen=True)
class StartupResult:
    help_seconds: list[float]
    tasks_seconds: list[float]
    help_cpu_seconds: list[float]
    tasks_cpu_seconds: list[float]

    @property
    def help_median_s(self) -> float:
        return statistics.median(self.help_seconds)

    @property
    def tasks_median_s(self) -> float:
        return statistics.median(self.tasks_seconds)

    @property
    def worst_median_s(self) -> float:
        return max(self.help_median_s, self.tasks_median_s)


def payoff_command() -> list[str]:
    """The installed `payoff` script next to this Python, or `python -m payoff`."""
    script = Path(sys.executable).with_name("payoff")
    return [str(script)] if script.exists() else [sys.executable, "-m", "payoff"]


def ledger_records(tasks: int) -> bytes:
    """JSON Lines of `tasks` finished tasks, each of one model call and one tool call."""
    lines = []
    for n in range(tasks):
        time_text = f"2026-11-{1 + n % 28:02d}T10:{n % 60:02d}:00Z"
        customer, task = f"customer-{n % 5}", f"task-{n}"
        lines += [
            {"id": f"{task}-llm", "time": time_text, "customer": customer, "task": task,
             "task_type": "support.ticket", "provider": "openai", "model": "gpt-4o",
             "input_tokens": 1200 + n, "output_tokens": 300, "visible": True},
            {"id": f"{task}-tool", "time": time_text, "customer": customer, "task": task,
             "kind": "tool", "cost": "0.010"},
            {"record": "task", "id": task, "customer": customer, "type": "support.ticket",
             "status": "completed", "time": time_text},
        ]  # fmt: skip
    return b"".join(msgspec.json.encode(line) + b"\n" for line in lines)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed_runs(args: list[str], runs: int) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds of `runs` fresh processes, from start to exit, each checked."""
    wall, cpu = [], []
    for _ in range(runs):
        cpu_before, started = _children_cpu_s(), time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall.append(time.perf_counter() - started)
        cpu.append(_children_cpu_s() - cpu_before)
    return wall, cpu


def measure(repeats: int, log: Callable[[str], None], runs: int = RUNS) -> StartupResult:
    payoff = payoff_command()
    result = StartupResult([], [], [], [])
    with tempfile.TemporaryDirectory() as folder:
        ledger = str(Path(folder) / "small.db")
        subprocess.run(
            [*payoff, "--db", ledger, "ingest", "-"],
            input=ledger_records(LEDGER_TASKS),
            check=True,
            capture_output=True,
        )
        # Both commands alternate, so that a busy moment of a shared machine falls on both.
        for repeat in range(repeats):
            wall, cpu = _timed_runs([*payoff, "--help"], runs)
            result.help_seconds.extend(wall)
            result.help_cpu_seconds.extend(cpu)
            wall, cpu = _timed_runs([*payoff, "--db", ledger, "tasks"], runs)
            result.tasks_seconds.extend(wall)
            result.tasks_cpu_seconds.extend(cpu)
            log(
                f"  repeat {repeat + 1}: --help {result.help_median_s:.3f} s, "
                f"tasks {result.tasks_median_s:.3f} s"
            )
    return result


if __name__ == "__main__":
    result = measure(1, print)
    print(
        f"--help {result.help_median_s:.3f} s, tasks {result.tasks_median_s:.3f} s "
        f"(target ≤ {TARGET_S} s)"
    )
