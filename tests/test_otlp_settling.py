"""The receiver judges a trace once it has settled, with what it judged before as ancestry.

In process, on a real SQLite ledger, with a clock the test moves: what is judged when, a
window of settled traces larger than one settlement takes, and spans arriving after their
run was judged (tests/test_otlp_batching.py runs the same through a live server).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as ProtoSpan

from payoff.catalog import Catalog
from payoff.service import otlp
from payoff.service.otlp import Receiver, SpanReport, arrive
from payoff.store import open_store, spans
from payoff.store.protocol import Store
from test_otlp import AGENT, CHAT, NOV_3_NS, proto_export, proto_span

SECOND_US = 1_000_000
SETTLE_S = 10.0


class Clock:
    def __init__(self) -> None:
        self.now_us = 1_800_000_000 * SECOND_US

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += round(seconds * SECOND_US)


@pytest.fixture
def ledger(tmp_path: Path) -> Store:
    store = open_store(tmp_path / "ledger.db")
    store.add_customer("acme", None, 0)
    return store


def receiver(store: Store, settle_s: float = SETTLE_S) -> Receiver:
    return Receiver(store, Catalog(), idle_timeout_s=600, settle_s=settle_s)


def send(receiver: Receiver, clock: Clock, export: ExportTraceServiceRequest) -> SpanReport:
    return receiver.receive(arrive(export), clock)


def run_spans(rng: random.Random, calls: int = 2) -> tuple[ProtoSpan, list[ProtoSpan]]:
    """An agent run with `calls` model calls: (its root, its calls), random ids."""
    trace = rng.getrandbits(128).to_bytes(16, "big")
    root_id = rng.getrandbits(64).to_bytes(8, "big")
    root = proto_span(
        {**AGENT, "payoff.customer": "acme"},
        span_id=root_id,
        trace_id=trace,
        end_ns=NOV_3_NS + 10_000_000_000,
    )
    children = [
        proto_span(
            CHAT,
            span_id=rng.getrandbits(64).to_bytes(8, "big"),
            parent=root_id,
            trace_id=trace,
            end_ns=NOV_3_NS + call * 1_000_000_000,
        )
        for call in range(calls)
    ]
    return root, children


def steps_of(store: Store, trace: bytes) -> list[tuple[str, bool]]:
    return [(step["kind"], step["visible"]) for step in store.task_steps(trace.hex(), limit=100)]


def test_a_trace_is_judged_once_it_has_settled_not_as_its_root_arrives(ledger: Store) -> None:
    clock, rng = Clock(), random.Random(1)
    root, calls = run_spans(rng)
    settling = receiver(ledger)
    report = send(settling, clock, proto_export(root, *calls))
    assert report.waiting == 3 and report.records == {}
    assert ledger.pending_spans() == 3
    clock.advance(SETTLE_S - 0.5)
    assert settling.settle(clock).records == {}  # not quiet long enough
    clock.advance(1)
    assert settling.settle(clock).records == {"accepted": 3}  # two calls, the close
    assert ledger.pending_spans() == 0
    assert steps_of(ledger, root.trace_id) == [("llm", False), ("llm", True)]
    clock.advance(60)
    assert settling.settle(clock).records == {}  # nothing judged twice


def test_with_no_settle_time_a_trace_is_judged_as_its_root_arrives(ledger: Store) -> None:
    clock, rng = Clock(), random.Random(2)
    root, calls = run_spans(rng)
    report = send(receiver(ledger, settle_s=0), clock, proto_export(root, *calls))
    assert report.records == {"accepted": 3} and ledger.pending_spans() == 0


def test_a_span_arriving_in_the_settle_time_moves_the_visible_step(ledger: Store) -> None:
    clock, rng = Clock(), random.Random(3)
    root, (first, late) = run_spans(rng)
    late.end_time_unix_nano = root.end_time_unix_nano + 2_000_000_000  # a stream read after
    settling = receiver(ledger)
    send(settling, clock, proto_export(root, first))
    clock.advance(SETTLE_S - 1)
    send(settling, clock, proto_export(late))  # the next export: the trace is not quiet
    clock.advance(SETTLE_S - 1)
    assert settling.settle(clock).records == {}
    clock.advance(2)
    settling.settle(clock)
    assert steps_of(ledger, root.trace_id) == [("llm", False), ("llm", True)]


def test_a_span_after_its_run_was_judged_inherits_it_and_a_call_is_billed_once(
    ledger: Store,
) -> None:
    clock, rng = Clock(), random.Random(4)
    root, (first, late) = run_spans(rng)
    root.attributes.extend(proto_span({"payoff.task_type": "support.ticket"}).attributes)
    # The customer is on the agent span only: the late call must inherit it.
    late.end_time_unix_nano = root.end_time_unix_nano + 60_000_000_000
    late.attributes.extend(proto_span({"gen_ai.response.id": "chatcmpl-9"}).attributes)
    twin = ProtoSpan()
    twin.CopyFrom(late)
    twin.span_id = rng.getrandbits(64).to_bytes(8, "big")
    settling = receiver(ledger)
    send(settling, clock, proto_export(root, first))
    clock.advance(SETTLE_S + 1)
    settling.settle(clock)
    send(settling, clock, proto_export(late))
    clock.advance(SETTLE_S + 1)
    assert settling.settle(clock).records == {"accepted": 1}
    send(settling, clock, proto_export(twin))
    clock.advance(SETTLE_S + 1)
    report = settling.settle(clock)
    assert (report.records, report.traced_twice, report.refused_earlier) == ({}, 1, [])
    assert steps_of(ledger, root.trace_id) == [("llm", True), ("llm", False)]
    [task] = ledger.tasks("acme")
    assert (task.type, task.status) == ("support.ticket", "completed")


def test_a_window_of_more_traces_than_one_settlement_takes_is_judged_in_turns(
    ledger: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many traces arriving in one export share their arrival: settlements of a few each
    go through them all, those still waiting for their root included, none judged twice."""
    monkeypatch.setattr(spans, "MAX_SETTLED_TRACES", 4)
    clock, rng = Clock(), random.Random(5)
    runs = [run_spans(rng, calls=1) for _ in range(7)]
    waiting = [run_spans(rng, calls=1)[1][0] for _ in range(5)]  # roots never sent
    export = proto_export(*(span for root, calls in runs for span in (root, *calls)), *waiting)
    settling = receiver(ledger)
    send(settling, clock, export)
    clock.advance(SETTLE_S + 1)
    accepted, behind = [], []
    for _ in range(6):
        report = settling.settle(clock)
        accepted.append(report.records["accepted"])
        behind.append(report.behind)
    assert sum(accepted) == 2 * len(runs)  # each run: its call and its close, once
    assert accepted[-1] == 0 and ledger.pending_spans() == len(waiting)
    assert behind == [True, True, True, False, False, False]  # 12 traces, 4 at a time


def test_a_window_that_keeps_failing_is_left_to_the_idle_sweep(
    ledger: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One trace whose judgement fails cannot stop settling: after SETTLE_ATTEMPTS failures
    its window is passed over, and the idle sweep judges it; nothing is lost."""
    clock, rng = Clock(), random.Random(6)
    root, calls = run_spans(rng)
    settling = receiver(ledger)
    send(settling, clock, proto_export(root, *calls))
    clock.advance(SETTLE_S + 1)
    real_decide = otlp.decide

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a judgement that fails")

    monkeypatch.setattr(otlp, "decide", failing)
    for _ in range(otlp.SETTLE_ATTEMPTS - 1):
        with pytest.raises(RuntimeError):
            settling.settle(clock)
    assert settling.settled_through.last_us == 0  # retried
    with pytest.raises(RuntimeError):
        settling.settle(clock)
    assert settling.settled_through.last_us == clock() - round(SETTLE_S * SECOND_US)
    monkeypatch.setattr(otlp, "decide", real_decide)
    clock.advance(1)
    assert settling.settle(clock).records == {}  # passed over
    assert ledger.pending_spans() == 3
    clock.advance(600)  # the idle timeout
    assert settling.sweep(clock).records == {"accepted": 3}
    assert steps_of(ledger, root.trace_id) == [("llm", False), ("llm", True)]
