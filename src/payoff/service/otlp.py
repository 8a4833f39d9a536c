"""OpenTelemetry exports into the ledger, judged run by run, whatever the batching.

An exporter sends a run's spans as they end: all at once, in batches, or one per export. The
server keeps every span of a GenAI trace (store/spans.py) until the run it belongs to can be
judged whole, then writes the records it makes, in the same transaction:

- when the local root of a trace arrives (a span without a parent, or with a remote one),
  every span whose ancestry reaches it is judged: its run has ended, since a parent span
  ends after its children and exporters send spans in the order they end;
- when a trace has received nothing for the idle timeout, what is known of it is judged,
  each ancestry's top taken for its root (a long-lived parent span that never ends, a
  process that died mid-run);
- a conversation task that received nothing for the idle timeout is closed, completed or
  failed as its latest root run was, at its latest moment (unless its application closed
  it first with a `task` record).

Each judgement reads only what is stored, so one export, batched exports and one span per
export give the same records; a re-sent span is recognised (its key is kept for the idle
timeout after its run was judged) and changes nothing.

Every refusal is counted by reason (`GET /metrics`), logged (at most LOG_REFUSALS_PER_MINUTE
lines a minute, then a count of those left out), and, for the spans of the export at hand,
summarised in its OTLP partial success.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import msgspec
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from payoff.catalog import Catalog
from payoff.service.ingest import build_batch
from payoff.service.metrics import Metrics
from payoff.sources.otlp import (
    COMPLETE,
    QUIET,
    ConversationMark,
    Reading,
    Refusal,
    Span,
    decide,
    read_spans,
)
from payoff.sources.otlp.spans import OTHER, rfc3339
from payoff.store.protocol import (
    ACCEPTED,
    DUPLICATE,
    KNOWN,
    RECORD_KINDS,
    STAGED,
    ArrivingSpan,
    ConversationRow,
    QuietConversation,
    SpanIngestStore,
    SpanSettlement,
    SpanWork,
    WriteBatch,
    WriteResult,
)

DEFAULT_IDLE_TIMEOUT_S = 1_800
"""A trace or conversation that received nothing for this long is judged as it is: half an
hour, the usual length of a quiet web session."""
LOG_REFUSALS_PER_MINUTE = 20

logger = logging.getLogger("payoff.otlp")
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Span).decode


@dataclass
class SpanReport:
    """What became of an export's spans (or of the spans a sweep judged)."""

    spans: int = 0
    ignored: int = 0
    waiting: int = 0
    """Spans kept until their run ends."""
    repeated: int = 0
    """Spans already received (a re-sent export)."""
    traced_twice: int = 0
    """Model-call spans judged now that another span of their trace stands for: one call
    traced twice (by its SDK and an instrumentation), billed once."""
    records: Counter[str] = field(default_factory=Counter)
    """Records written by status: accepted, duplicate, conflict, rejected."""
    unpriced: int = 0
    refused: list[Refusal] = field(default_factory=list)
    """Spans of this export that made no record, and why (code, reason)."""
    refused_earlier: list[Refusal] = field(default_factory=list)
    """Spans of earlier exports refused when their run was judged now."""


class RefusalLog:
    """Logs each refusal as a warning, at most `per_minute` lines a minute; then one line
    saying how many were left out."""

    def __init__(self, per_minute: int = LOG_REFUSALS_PER_MINUTE) -> None:
        self.per_minute = per_minute
        self._lock = threading.Lock()
        self._window_start = 0.0
        self._logged = 0
        self._left_out = 0

    def log(self, refusals: list[Refusal]) -> None:
        for refusal in refusals:
            with self._lock:
                now = time.monotonic()
                if now - self._window_start >= 60:
                    if self._left_out:
                        logger.warning(
                            "%d more spans refused in the last minute (not logged one by one)",
                            self._left_out,
                        )
                    self._window_start, self._logged, self._left_out = now, 0, 0
                if self._logged >= self.per_minute:
                    self._left_out += 1
                    continue
                self._logged += 1
            logger.warning("span %s refused (%s): %s", refusal.span, refusal.code, refusal.reason)


class Arrival(NamedTuple):
    """An export's spans, read and encoded for keeping (work done off the writer thread)."""

    reading: Reading
    arriving: list[ArrivingSpan]


def arrive(request: ExportTraceServiceRequest) -> Arrival:
    """Read an export's spans; a span is needed when its trace has a GenAI span in it."""
    reading = read_spans(request)
    genai_traces = {span.trace for span in reading.spans if span.kind != OTHER}
    arriving = [
        ArrivingSpan(span.trace, span.span, span.trace in genai_traces, _encode(span))
        for span in reading.spans
    ]
    return Arrival(reading, arriving)


@dataclass
class Receiver:
    """What judging spans needs: the ledger, the catalog, the idle timeout, the counters."""

    store: SpanIngestStore
    catalog: Catalog
    idle_timeout_s: int = DEFAULT_IDLE_TIMEOUT_S
    metrics: Metrics = field(default_factory=Metrics)
    refusal_log: RefusalLog = field(default_factory=RefusalLog)

    def receive(self, arrival: Arrival, clock: Callable[[], int]) -> SpanReport:
        """Keep an export's spans and judge every run they complete; one transaction.

        Runs on the server's writer thread; `arrive` prepares the export beforehand.
        """
        reading, arriving = arrival
        report = SpanReport(
            spans=reading.total, ignored=reading.ignored, refused=list(reading.refused)
        )
        judged = _Judgement(self.catalog)
        settlement, result, staged = self.store.settle_spans(arriving, clock, judged.settle)
        decided = {trace + span for trace, span in settlement.decided}
        ours = {span.key for span in reading.spans}
        waiting = {
            span.key
            for span, what in zip(reading.spans, staged, strict=True)
            if what == STAGED and span.key not in decided
        }
        report.waiting = len(waiting)
        for span, what in zip(reading.spans, staged, strict=True):
            if span.kind == OTHER and span.key not in waiting:
                report.ignored += 1  # whether kept as a link to its run or not
            elif what == KNOWN:
                report.repeated += 1
        self._account(judged, result, report, ours)
        self._count(report)
        return report

    def sweep(self, clock: Callable[[], int]) -> SpanReport:
        """Judge quiet traces and close quiet conversations; forget old decided spans."""
        idle_us = self.idle_timeout_s * 1_000_000
        now_us = clock()
        judged = _Judgement(self.catalog)
        _, result, _ = self.store.settle_spans(
            [],
            clock,
            judged.settle,
            quiet_before_us=now_us - idle_us,
            forget_before_us=now_us - idle_us,
        )
        report = SpanReport()
        self._account(judged, result, report, set())
        self._count(report)
        return report

    def _account(
        self, judged: _Judgement, result: WriteResult, report: SpanReport, ours: set[str]
    ) -> None:
        statuses = judged.statuses(result)
        report.records.update(status for status, _ in statuses.values())
        report.unpriced += judged.unpriced(result)
        report.traced_twice += judged.traced_twice
        for refusal in judged.refusals(statuses):
            key = judged.trace_of.get(refusal.span, "") + refusal.span
            (report.refused if key in ours else report.refused_earlier).append(refusal)

    def _count(self, report: SpanReport) -> None:
        refused = report.refused + report.refused_earlier
        self.metrics.count_records(report.records.elements())
        self.metrics.count_spans("received", report.spans)
        self.metrics.count_spans("ignored", report.ignored)
        self.metrics.count_spans("repeated", report.repeated)
        self.metrics.count_spans("traced_twice", report.traced_twice)
        self.metrics.count_spans("refused", len(refused))
        self.metrics.count_refused(refusal.code for refusal in refused)
        self.refusal_log.log(refused)


class _Judgement:
    """One settlement: the spans judged, the records they made, and their refusals."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.batch = WriteBatch()
        self.record_ids: list[str] = []
        """The id of the record of each line of the batch (line n at n - 1)."""
        self.record_spans: dict[str, str] = {}
        """Record id -> the span it came from (hex)."""
        self.trace_of: dict[str, str] = {}
        """Span id (hex) -> its trace, for the spans judged."""
        self.span_refusals: list[Refusal] = []
        self.traced_twice = 0
        self.line_refusals: list[tuple[int, str, str]] = []

    def settle(self, work: SpanWork) -> SpanSettlement:
        touched = [_decode(body) for body in work.touched]
        quiet = [_decode(body) for body in work.quiet]
        first, second = decide(touched, COMPLETE), decide(quiet, QUIET)
        decisions = (first, second)
        records = first.records + second.records
        marks: dict[str, ConversationMark] = {}
        for decision in decisions:
            self.span_refusals += decision.refused
            self.traced_twice += decision.traced_twice
            for span in decision.decided:
                self.trace_of[span.span] = span.trace
            for task, mark in decision.conversations.items():
                if task in marks:
                    marks[task].merge(mark)
                else:
                    marks[task] = mark
        closing, forget = _closing(work.conversations, marks)
        records += closing
        for record in records:
            record_id = str(record["id"])
            self.record_ids.append(record_id)
            if record["record"] == "usage":
                self.record_spans[record_id] = record_id.rsplit("-", 1)[1]
        lines = [(number, _encode(record)) for number, record in enumerate(records, start=1)]
        self.batch, problems = build_batch(self.catalog, None, lines)
        for problem in problems:
            assert problem.line is not None
            self.line_refusals.append((problem.line, problem.status, problem.reason))
        decided = [(span.trace, span.span) for d in decisions for span in d.decided]
        rows = {
            task: ConversationRow(
                mark.last_end_ns // 1000, mark.run_end_ns // 1000, mark.run_failed
            )
            for task, mark in marks.items()
        }
        return SpanSettlement(self.batch, decided, rows, forget)

    def statuses(self, result: WriteResult) -> dict[int, tuple[str, str | None]]:
        """(status, reason) of each line of the batch, build refusals included."""
        found: dict[int, tuple[str, str | None]] = {}
        for kind in RECORD_KINDS:
            lines = self.batch.lines[kind]
            for line, (status, reason, _) in zip(lines, getattr(result, kind), strict=True):
                found[line] = (status, reason)
        for line, status, reason in self.line_refusals:
            found[line] = (status, reason)
        return found

    def unpriced(self, result: WriteResult) -> int:
        from payoff.rows import COST_AT

        return sum(
            1
            for row, (status, _, _) in zip(self.batch.events, result.events, strict=True)
            if status == ACCEPTED and row[COST_AT] is None
        )

    def refusals(self, statuses: dict[int, tuple[str, str | None]]) -> list[Refusal]:
        """Spans refused while judging, then records the ledger would not take."""
        found = list(self.span_refusals)
        for line, (status, reason) in sorted(statuses.items()):
            if status in (ACCEPTED, DUPLICATE):
                continue
            record_id = self.record_ids[line - 1]
            span = self.record_spans.get(record_id, record_id)
            found.append(Refusal(span, status, f"record {record_id}: {reason or status}"))
        return found


def _closing(
    quiet: list[QuietConversation], marks: dict[str, ConversationMark]
) -> tuple[list[dict[str, object]], list[str]]:
    """Task records closing the quiet conversations still open, and those to forget.

    A conversation that learnt something in this same settlement is not quiet after all.
    """
    records: list[dict[str, object]] = []
    forget: list[str] = []
    for conversation in quiet:
        if conversation.task in marks:
            continue
        forget.append(conversation.task)
        if conversation.status != "open" or conversation.customer is None:
            continue  # ended by its application, or never stored
        ended_us = max(conversation.last_end_us, conversation.run_end_us or 0)
        records.append(
            {
                "record": "task",
                "id": conversation.task,
                "customer": conversation.customer,
                "status": "failed" if conversation.run_failed else "completed",
                "time": rfc3339(ended_us * 1000),
            }
        )
    return records, forget
