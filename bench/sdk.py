"""The SDK's `task.record()`: overhead per call on the embedded and the remote sink.

The remote sink only enqueues: its spooler and sender threads run meanwhile, against a
server address where nothing listens, so the records go to the spool and the network is
never waited for. The embedded sink commits each record to SQLite before it returns.
Baseline in the same run: the bare work every record needs whatever the sink, reading the
usage of the same response with `usage_from_response` (the ratio shows what the rest costs).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.server import _free_port

RESPONSE = {
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "usage": {
        "prompt_tokens": 1497,
        "completion_tokens": 1037,
        "prompt_tokens_details": {"cached_tokens": 1408},
        "completion_tokens_details": {"reasoning_tokens": 256},
    },
}
REMOTE_CALLS = 20_000
EMBEDDED_CALLS = 1_000
TARGET_REMOTE_MEDIAN_US = 50.0


@dataclass(frozen=True)
class SdkResult:
    remote_us: list[float]
    embedded_us: list[float]
    bare_us: list[float]

    @property
    def remote_median_us(self) -> float:
        return statistics.median(self.remote_us)

    @property
    def embedded_median_us(self) -> float:
        return statistics.median(self.embedded_us)

    @property
    def bare_median_us(self) -> float:
        return statistics.median(self.bare_us)


def _timed_calls(call: Callable[[], object], calls: int) -> list[float]:
    """Microseconds of each call, one by one (a median, not a mean over a burst)."""
    clock = time.perf_counter_ns
    timings = []
    for _ in range(calls):
        started = clock()
        call()
        timings.append((clock() - started) / 1000)
    return timings


def measure(repeats: int, log: Callable[[str], None]) -> SdkResult:
    import payoff
    from payoff.sources.providers import usage_from_response

    remote, embedded, bare = [], [], []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            url = f"http://127.0.0.1:{_free_port()}"
            meter = payoff.Meter(
                url, api_key="bench", spool=Path(folder) / "spool", timeout_s=1,
                queue_records=REMOTE_CALLS + 1, close_at_exit=False,
            )  # fmt: skip
            with meter.task(customer="acme", type="bench") as task:
                remote += _timed_calls(lambda: task.record(RESPONSE), REMOTE_CALLS)
            meter.close(timeout_s=0)
            meter = payoff.Meter(Path(folder) / "l.db", close_at_exit=False)
            with meter.task(customer="acme", type="bench") as task:
                embedded += _timed_calls(lambda: task.record(RESPONSE), EMBEDDED_CALLS)
            meter.close()
        bare += _timed_calls(lambda: usage_from_response(RESPONSE), REMOTE_CALLS)
        log(
            f"  repeat {repeat + 1}: remote {statistics.median(remote):.1f} µs, embedded "
            f"{statistics.median(embedded):.0f} µs, bare {statistics.median(bare):.1f} µs"
        )
    return SdkResult(remote, embedded, bare)


if __name__ == "__main__":
    result = measure(1, print)
    print(f"remote median {result.remote_median_us:.1f} µs (target ≤ {TARGET_REMOTE_MEDIAN_US})")
