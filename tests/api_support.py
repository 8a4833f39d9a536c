"""Shared set-up for the API tests: a ledger with keys of every scope, and a live server."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

import factories
from factories import OUTCOME_PLAN
from payoff.service import access, plans
from payoff.store import open_store


@dataclass
class Keys:
    admin: str
    ingest: str
    acme: str
    globex: str

    def header(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}


def prepare_ledger(path: Path) -> Keys:
    """A ledger with customers acme and globex on a customer-verified outcome plan, and keys."""
    store = open_store(path)
    try:
        for customer in ("acme", "globex"):
            store.add_customer(customer, None, 0)
        plan_file = path.with_suffix(".plan.yaml")
        plan_file.write_text(OUTCOME_PLAN)
        plans.apply_plan(store, plan_file)
        start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=60)
        for customer in ("acme", "globex"):
            plans.subscribe(store, customer, "outcomes", start)
        return Keys(
            *(access.create_key(store, scope)[1]
              for scope in ("admin", "ingest", "customer:acme", "customer:globex"))
        )  # fmt: skip
    finally:
        store.close()


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def usage(id: str, customer: str = "acme", task: str = "t1", **fields: Any) -> dict[str, Any]:
    """A usage record of `task`, with the customer first (as the API tests name it)."""
    return factories.usage(id, customer=customer, task=task, **fields)


SHORT_SETTLE = ("--settle-seconds", "0.3")
"""`payoff serve` arguments for tests that read what a run's spans made: settled in 0.3 s,
not the default 10 s (then `LiveServer.wait_judged`)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait_judged(self, timeout_s: float = 30) -> None:
        """Until the server has judged every OpenTelemetry span it keeps (its settle time
        passed), as its `payoff_otlp_spans_waiting` gauge says."""
        self._wait_for_gauge("payoff_otlp_spans_waiting", lambda value: value == 0, timeout_s)

    def wait_settled(self, after_s: float, timeout_s: float = 60) -> None:
        """Until the server has judged every trace that settled after `after_s` (Unix time),
        whatever other traces still wait (with a settle time above 0)."""
        gauge = "payoff_otlp_settled_through_seconds"
        self._wait_for_gauge(gauge, lambda value: value > after_s, timeout_s)

    def _wait_for_gauge(
        self, name: str, reached: Callable[[float], bool], timeout_s: float
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            page = httpx.get(f"{self.url}/metrics", timeout=5).text
            found = re.search(rf"^{name} (\S+)$", page, re.M)
            assert found is not None, f"the server shows no {name}"
            if reached(float(found[1])):
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} not reached after {timeout_s} s:\n{page}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, as in a crash or an OOM kill."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


# Generous: on a loaded machine of 2 cores, a server with several workers has taken over 30 s.
STARTUP_LIMIT_S = 60


def start_server(db: Path, log: Path, *args: str, port: int | None = None) -> LiveServer:
    port = port or free_port()
    command = [
        sys.executable, "-m", "payoff.cli", "--db", str(db), "serve",
        "--port", str(port), *args,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with log.open("ab") as output:  # the server writes to its own copy of the descriptor
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"payoff serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return LiveServer(url, process, log)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    process.wait(timeout=10)  # reaped here, not left to warn in whichever test runs next
    raise RuntimeError(
        f"payoff serve did not answer in {STARTUP_LIMIT_S} s: {log.read_text()[-2000:]}"
    )


@contextmanager
def live_server(db: Path, log: Path, *args: str, port: int | None = None) -> Iterator[LiveServer]:
    server = start_server(db, log, *args, port=port)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
