"""`payoff serve` over loopback HTTP: batched ingest, single-record latency, OTLP spans.

The server runs as its own process (`payoff serve`, one worker) on a fresh ledger; clients
run in this process on threads, each with one keep-alive connection (`http.client`, the
leanest client the standard library has, so that client work takes little of the machine's
two cores from the server). Batched ingest is compared with `payoff ingest` of the same
records from a file, measured in the same run (bench/ingest.py).
"""

from __future__ import annotations

import http.client
import itertools
import json
import multiprocessing
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.workload import WORK

RECORDS_PER_REQUEST = 1_000
BATCH_CLIENTS = 4
LATENCY_CLIENTS = 4
LATENCY_REQUESTS_PER_CLIENT = 500
OTLP_TRACES, OTLP_SPANS_PER_TRACE = 1_000, 10  # 10,000 spans: a root and 9 model calls each
SETTLE_S = 0.2
"""The served ledger's settle time: runs are judged this long after their last span, so
that the OTLP figure (export to every run judged) is the work, not a configured wait."""


@dataclass(frozen=True)
class ServerResult:
    records: int
    batch_seconds: list[float]
    latencies_ms: list[float]
    """On a fresh ledger."""
    latencies_after_bulk_ms: list[float]
    """Right after the batched ingest, on its ledger: its WAL is being checkpointed."""
    bare_commit_ms: list[float]
    """One-row commits with sqlite3 alone on the same disk: the floor under any latency."""
    latency_load: str
    otlp_spans: int
    otlp_seconds: list[float]

    @property
    def batch_rate(self) -> float:
        return self.records / statistics.median(self.batch_seconds)

    def latency_percentile(
        self, share: float, *, after_bulk: bool = False, bare: bool = False
    ) -> float:
        chosen = self.bare_commit_ms if bare else self.latencies_ms
        ordered = sorted(self.latencies_after_bulk_ms if after_bulk else chosen)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]

    @property
    def otlp_rate(self) -> float:
        return self.otlp_spans / statistics.median(self.otlp_seconds)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def _server(folder: Path) -> Iterator[tuple[int, str]]:
    """A fresh ledger with an ingest key, served by `payoff serve` on a free port."""
    from payoff.service import access
    from payoff.store import open_store

    db = folder / "served.db"
    store = open_store(db)
    _, key = access.create_key(store, "ingest")
    store.close()
    port = _free_port()
    command = [
        sys.executable, "-m", "payoff.cli", "--db", str(db), "serve", "--port", str(port),
        "--settle-seconds", str(SETTLE_S),
    ]  # fmt: skip
    log_file = (folder / "serve.log").open("wb")
    process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("payoff serve did not start") from None
                time.sleep(0.05)
        yield port, key
    finally:
        process.terminate()
        process.wait(timeout=30)
        log_file.close()


def _post(
    connection: http.client.HTTPConnection, path: str, body: bytes, headers: dict[str, str]
) -> bytes:
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path}: {response.status} {data[:300]!r}")
    return data


def _run_clients(
    port: int, clients: int, work: Callable[[http.client.HTTPConnection], None]
) -> float:
    """Run `work` on `clients` threads at once; the wall time until the last one is done."""
    errors: list[BaseException] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        try:
            work(connection)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def _bodies(usage_file: Path) -> list[bytes]:
    """The file's records as JSON Lines bodies of RECORDS_PER_REQUEST records."""
    with usage_file.open("rb") as lines:
        return [
            b"".join(chunk)
            for chunk in iter(lambda: list(itertools.islice(lines, RECORDS_PER_REQUEST)), [])
        ]


def _batched(port: int, key: str, bodies: list[bytes], records: int) -> float:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-ndjson"}
    pending = iter(bodies)
    lock = threading.Lock()
    accepted = []

    def work(connection: http.client.HTTPConnection) -> None:
        while True:
            with lock:
                body = next(pending, None)
            if body is None:
                return
            answer = json.loads(_post(connection, "/v1/events", body, headers))
            accepted.append(answer["accepted"])

    seconds = _run_clients(port, BATCH_CLIENTS, work)
    if sum(accepted) != records:
        raise RuntimeError(f"accepted {sum(accepted):,} of {records:,} records")
    return seconds


def _latency_client(port: int, key: str, prefix: str) -> list[float]:
    """One client: one-record requests back to back, each timed from send to answer."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    bodies = [
        json.dumps([{
            "id": f"{prefix}-{number}", "time": "2026-11-03T10:00:00Z", "customer": "acme",
            "task": f"{prefix}-t{number // 10}", "provider": "openai", "model": "gpt-4o-mini",
            "input_tokens": 1200, "output_tokens": 300,
        }]).encode()
        for number in range(LATENCY_REQUESTS_PER_CLIENT)
    ]  # fmt: skip
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies = []
    for body in bodies:
        started = time.perf_counter()
        _post(connection, "/v1/events", body, headers)
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    return latencies


def _latencies(port: int, key: str, prefix: str) -> list[float]:
    """LATENCY_CLIENTS clients at once, each a process of its own: the timings measure the
    server, not the clients' turns at one interpreter lock."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(LATENCY_CLIENTS) as pool:
        jobs = [(port, key, f"{prefix}-c{n}") for n in range(LATENCY_CLIENTS)]
        return [ms for one in pool.starmap(_latency_client, jobs) for ms in one]


def bare_commit_latencies(folder: Path, commits: int) -> list[float]:
    """One-row INSERT + COMMIT with sqlite3, WAL, synchronous=FULL: the disk's floor."""
    import sqlite3

    connection = sqlite3.connect(folder / "bare.db", isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute("CREATE TABLE events (id TEXT PRIMARY KEY, body TEXT)")
    latencies = []
    for number in range(commits):
        started = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("INSERT INTO events VALUES (?, ?)", (f"e{number}", "x" * 300))
        connection.execute("COMMIT")
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    return latencies


def otlp_export(seed: int) -> bytes:
    """A protobuf OTLP export of OTLP_TRACES agent runs: an invoke_agent root, 9 chat calls;
    random trace and span ids, as the OpenTelemetry SDKs make them."""
    import random

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

    def attribute(key: str, value: str | int) -> KeyValue:
        if isinstance(value, int):
            return KeyValue(key=key, value=AnyValue(int_value=value))
        return KeyValue(key=key, value=AnyValue(string_value=value))

    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.append(attribute("payoff.customer", "acme"))
    spans = resource_spans.scope_spans.add().spans
    start_ns = 1_793_700_000 * 10**9  # 2026-11-03T10:00:00Z
    ids = random.Random(seed)
    for _ in range(OTLP_TRACES):
        trace_id = ids.getrandbits(128).to_bytes(16, "big")
        root_id = ids.getrandbits(64).to_bytes(8, "big")
        root = spans.add(trace_id=trace_id, span_id=root_id, name="invoke_agent")
        root.start_time_unix_nano = start_ns
        root.end_time_unix_nano = start_ns + 10 * 10**9
        root.attributes.append(attribute("gen_ai.operation.name", "invoke_agent"))
        root.attributes.append(attribute("gen_ai.agent.name", "support"))
        for call in range(OTLP_SPANS_PER_TRACE - 1):
            span = spans.add(
                trace_id=trace_id,
                span_id=ids.getrandbits(64).to_bytes(8, "big"),
                parent_span_id=root_id,
                name="chat gpt-4o",
            )
            span.start_time_unix_nano = start_ns + call * 10**9
            span.end_time_unix_nano = start_ns + call * 10**9 + 5 * 10**8
            for key, value in (
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", "openai"),
                ("gen_ai.request.model", "gpt-4o"),
                ("gen_ai.usage.input_tokens", 1_500 + call),
                ("gen_ai.usage.cache_read.input_tokens", 1_000),
                ("gen_ai.usage.output_tokens", 300),
                ("gen_ai.usage.reasoning.output_tokens", 100),
            ):
                span.attributes.append(attribute(key, value))
    return request.SerializeToString()


def _otlp(port: int, key: str, seed: int) -> float:
    """Seconds from sending the export to every run in it judged and written."""
    body = otlp_export(seed)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        started = time.perf_counter()
        _post(connection, "/v1/traces", body, headers)
        while _spans_waiting(connection) > 0:
            time.sleep(0.01)
        return time.perf_counter() - started
    finally:
        connection.close()


def _spans_waiting(connection: http.client.HTTPConnection) -> int:
    connection.request("GET", "/metrics")
    page = connection.getresponse().read().decode()
    for line in page.splitlines():
        if line.startswith("payoff_otlp_spans_waiting "):
            return int(line.split()[1])
    raise RuntimeError("the server shows no payoff_otlp_spans_waiting")


def measure(
    usage_file: Path, records: int, repeats: int, log: Callable[[str], None]
) -> ServerResult:
    bodies = _bodies(usage_file)
    batch_seconds, otlp_seconds, latencies, after_bulk, bare = [], [], [], [], []
    for repeat in range(repeats):
        with tempfile.TemporaryDirectory(dir=WORK) as folder:
            bare += bare_commit_latencies(
                Path(folder), LATENCY_CLIENTS * LATENCY_REQUESTS_PER_CLIENT
            )
        with tempfile.TemporaryDirectory(dir=WORK) as folder, _server(Path(folder)) as (port, key):
            latencies += _latencies(port, key, f"lat{repeat}")
        with tempfile.TemporaryDirectory(dir=WORK) as folder, _server(Path(folder)) as (port, key):
            seconds = _batched(port, key, bodies, records)
            batch_seconds.append(seconds)
            log(
                f"  http batched, repeat {repeat + 1}: {seconds:.2f} s "
                f"({records / seconds:,.0f} events/s)"
            )
            after_bulk += _latencies(port, key, f"bulk{repeat}")
            otlp = _otlp(port, key, repeat + 1)
            otlp_seconds.append(otlp)
            log(f"  otlp {OTLP_TRACES * OTLP_SPANS_PER_TRACE:,} spans: {otlp:.2f} s")
    load = (
        f"{LATENCY_CLIENTS} clients, each sending {LATENCY_REQUESTS_PER_CLIENT} one-record "
        f"requests back to back, per repeat"
    )
    return ServerResult(
        records,
        batch_seconds,
        latencies,
        after_bulk,
        bare,
        load,
        OTLP_TRACES * OTLP_SPANS_PER_TRACE,
        otlp_seconds,
    )


if __name__ == "__main__":  # a quick look: python -m bench.server RECORDS
    from bench import workload

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    result = measure(workload.path_for(count), count, 1, print)
    print(
        f"batched {result.batch_rate:,.0f} events/s; "
        f"single p50 {result.latency_percentile(0.5):.1f} ms "
        f"p99 {result.latency_percentile(0.99):.1f} ms; "
        f"otlp {result.otlp_rate:,.0f} spans/s"
    )
