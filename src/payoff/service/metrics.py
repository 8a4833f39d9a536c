"""The server's own figures, in the Prometheus text format (`GET /metrics`).

A handful of counters and one latency histogram per route, kept by hand: the exposition
format is a few lines of text, and prometheus_client would bring a process-wide registry
and, for several server processes, a shared directory of memory-mapped files, to serve the
same few numbers. Each server process counts its own requests (scrape each, or run one).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Upper bounds of the request latency histogram, in seconds."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    """Counters and latencies of one server process; safe to update from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: Counter[str] = Counter()
        self._spans: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._requests: Counter[tuple[str, int]] = Counter()
        self._latency: dict[str, list[int]] = {}
        self._latency_sum: Counter[str] = Counter()

    def count_records(self, statuses: Iterable[str]) -> None:
        """Records written, by status (accepted, duplicate, conflict, rejected)."""
        with self._lock:
            self._records.update(statuses)

    def count_spans(self, outcome: str, number: int) -> None:
        """Spans received, by what became of them (recorded, ignored, waiting, refused, or
        traced twice: a call another span stands for)."""
        if number:
            with self._lock:
                self._spans[outcome] += number

    def count_refused(self, reasons: Iterable[str]) -> None:
        """Spans refused, by reason code."""
        with self._lock:
            self._refused.update(reasons)

    def observe(self, route: str, status: int, seconds: float) -> None:
        """One request answered, and how long it took."""
        with self._lock:
            self._requests[(route, status)] += 1
            buckets = self._latency.setdefault(route, [0] * (len(LATENCY_BUCKETS_S) + 1))
            for index, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    buckets[index] += 1
                    break
            else:
                buckets[-1] += 1
            self._latency_sum[route] += round(seconds * 1_000_000)

    def render(self) -> str:
        """Everything counted, in the Prometheus text exposition format 0.0.4."""
        with self._lock:
            lines = [
                *_counter(
                    "payoff_records_total",
                    "Records written, by status.",
                    {(("status", k),): v for k, v in self._records.items()},
                ),
                *_counter(
                    "payoff_otlp_spans_total",
                    "OpenTelemetry spans received, by what became of them.",
                    {(("outcome", k),): v for k, v in self._spans.items()},
                ),
                *_counter(
                    "payoff_otlp_spans_refused_total",
                    "OpenTelemetry spans refused, by reason.",
                    {(("reason", k),): v for k, v in self._refused.items()},
                ),
                *_counter(
                    "payoff_http_requests_total",
                    "HTTP requests answered, by route and status.",
                    {(("route", r), ("status", str(c))): v for (r, c), v in self._requests.items()},
                ),
                *self._histogram(),
            ]
        return "\n".join(lines) + "\n"

    def _histogram(self) -> list[str]:
        name = "payoff_http_request_duration_seconds"
        lines = [
            f"# HELP {name} Time to answer an HTTP request, by route.",
            f"# TYPE {name} histogram",
        ]
        for route in sorted(self._latency):
            cumulative = 0
            buckets = self._latency[route]
            for bound, number in zip((*LATENCY_BUCKETS_S, None), buckets, strict=True):
                cumulative += number
                le = "+Inf" if bound is None else repr(bound)
                lines.append(f'{name}_bucket{{route="{route}",le="{le}"}} {cumulative}')
            total_s = self._latency_sum[route] / 1_000_000
            lines.append(f'{name}_sum{{route="{route}"}} {total_s}')
            lines.append(f'{name}_count{{route="{route}"}} {cumulative}')
        return lines


def _counter(name: str, text: str, values: dict[tuple[tuple[str, str], ...], int]) -> list[str]:
    lines = [f"# HELP {name} {text}", f"# TYPE {name} counter"]
    for labels, value in sorted(values.items()):
        shown = ",".join(f'{key}="{_escape(label)}"' for key, label in labels)
        lines.append(f"{name}{{{shown}}} {value}")
    return lines


def _escape(label: str) -> str:
    return label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
