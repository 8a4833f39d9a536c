"""OpenTelemetry spans waiting for the rest of their run, and conversations waiting to close.

A span is kept here (`otlp_spans`) from its arrival until its run is judged; the records the
judgement makes are written in the same transaction that marks the span decided, so a crash
loses nothing and repeats nothing. A decided span is kept, marked decided, until it is
forgotten (the caller says when): a re-sent export is recognised and changes nothing, and a
span arriving after its run was judged is judged with the decided spans of its trace as its
ancestry. A conversation task that an OpenTelemetry run joined is remembered
(`otlp_conversations`) until it goes quiet and is closed.

    arriving spans ──> stage (new keys only) ──> pending spans of their traces ─┐
                          (when judged on arrival)                              │
    settled traces (quiet since `settled_between`) ──> their pending spans ─────┤
    quiet traces (sweep) ──> their pending spans ───────────────────────────────┤
    decided spans of those traces (ancestry) ───────────────────────────────────┤
    quiet conversations (sweep) ────────────────────────────────────────────────┤
                                                              settle (the caller judges)
                                                                                 │
    records ──> events, task updates   decided spans ──> marked   marks ──> conversations
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from payoff.store import schema as s
from payoff.store.in_lists import chunks
from payoff.store.protocol import (
    KNOWN,
    SKIPPED,
    STAGED,
    ArrivingSpan,
    ConversationRow,
    QuietConversation,
    SettleMark,
    SpanSettlement,
    SpanWork,
    WriteResult,
)

MAX_QUIET_TRACES = 1_000
"""Quiet traces judged by one sweep; the rest wait for the next (bounded transactions)."""
MAX_SETTLED_TRACES = 100
"""Settled traces judged in one transaction: a thousand spans or so, well under a second of
the ledger's write lock; the caller takes the rest at once, one transaction each."""


class SpanStaging:
    """The staging of OTLP spans; mixed into SqlStore, whose write transaction it uses."""

    def settle_spans(
        self,
        arriving: Sequence[ArrivingSpan],
        clock: Callable[[], int],
        settle: Callable[[SpanWork], SpanSettlement],
        *,
        judge_arriving: bool = True,
        settled_between: tuple[SettleMark, int] | None = None,
        quiet_before_us: int | None = None,
        forget_before_us: int | None = None,
    ) -> tuple[SpanSettlement, WriteResult, list[str]]:
        """Stage `arriving`, let `settle` judge what can be judged, write it: one transaction.

        Returns the settlement, the statuses of its batch, and what became of each arriving
        span: STAGED, KNOWN (already staged or decided: a re-send) or SKIPPED (no GenAI span
        in its trace). The traces judged complete (`SpanWork.touched`) are those `arriving`
        added to (with `judge_arriving`) and, with `settled_between` (after a mark, before a
        moment), those whose last span arrived in that window. With `quiet_before_us`, traces and
        conversations that received nothing since then are judged as they are; with
        `forget_before_us`, spans decided before then are dropped.
        """
        with self._write_transaction() as conn:  # type: ignore[attr-defined]
            now_us = clock()
            staged = self._stage(conn, arriving, now_us)
            touched: set[str] = set()
            if judge_arriving:
                pairs = zip(arriving, staged, strict=True)
                touched.update(span.trace for span, what in pairs if what == STAGED)
            through = None
            if settled_between is not None:
                settled, through = _settled_traces(conn, *settled_between)
                touched.update(settled)
            pending = _bodies(conn, touched, decided=False)
            work = SpanWork(now_us, pending, [], [], settled_through=through)
            quiet: list[str] = []
            if quiet_before_us is not None:
                quiet = _quiet_traces(conn, quiet_before_us, touched)
                work.quiet = _bodies(conn, quiet, decided=False)
                work.conversations = _quiet_conversations(conn, quiet_before_us)
            if work.touched or work.quiet:
                work.known = _bodies(conn, [*touched, *quiet], decided=True)
            settlement = settle(work)
            result = self._write_rows(conn, settlement.batch, now_us)  # type: ignore[attr-defined]
            _mark_decided(conn, settlement.decided, now_us)
            _forget_conversations(conn, settlement.forget)
            _remember_conversations(conn, settlement.conversations, now_us)
            if forget_before_us is not None:
                conn.execute(
                    delete(s.otlp_spans).where(s.otlp_spans.c.decided_at_us < forget_before_us)
                )
        return settlement, result, staged

    def pending_spans(self) -> int:
        """Spans staged and not yet judged (their run has not ended)."""
        t = s.otlp_spans.c
        with self.engine.connect() as conn:  # type: ignore[attr-defined]
            return int(
                conn.execute(
                    select(func.count()).select_from(s.otlp_spans).where(t.decided_at_us.is_(None))
                ).scalar_one()
            )

    def _stage(self, conn: Connection, arriving: Sequence[ArrivingSpan], now_us: int) -> list[str]:
        """Insert the spans not known yet; a link span only when its trace has GenAI spans."""
        if not arriving:
            return []
        t = s.otlp_spans.c
        traces = sorted({span.trace for span in arriving})
        known: set[tuple[str, str]] = set()
        waiting: set[str] = set()  # traces with spans kept, decided or not: a span may link to them
        for chunk in chunks(traces):
            for row in conn.execute(select(t.trace, t.span).where(t.trace.in_(chunk))):
                known.add((row.trace, row.span))
                waiting.add(row.trace)
        staged, rows, seen = [], [], set()
        for span in arriving:
            key = (span.trace, span.span)
            if key in known or key in seen:
                staged.append(KNOWN)
                continue
            if not (span.needed or span.trace in waiting):
                staged.append(SKIPPED)
                continue
            staged.append(STAGED)
            seen.add(key)
            rows.append(
                {
                    "trace": span.trace,
                    "span": span.span,
                    "body": span.body,
                    "received_at_us": now_us,
                }
            )
        if rows:
            conn.execute(s.otlp_spans.insert(), rows)
        return staged


def _bodies(conn: Connection, traces: Iterable[str], *, decided: bool) -> list[bytes]:
    """The bodies of the spans of `traces` decided earlier, or not yet decided (pending),
    in a stable order."""
    t = s.otlp_spans.c
    state = t.decided_at_us.is_not(None) if decided else t.decided_at_us.is_(None)
    bodies: list[bytes] = []
    for chunk in chunks(sorted(set(traces))):
        query = (
            select(t.body)
            .where(t.trace.in_(chunk), state, t.body.is_not(None))
            .order_by(t.trace, t.span)
        )
        bodies.extend(bytes(body) for body in conn.scalars(query))
    return bodies


def _settled_traces(
    conn: Connection, after: SettleMark, before_us: int
) -> tuple[list[str], SettleMark]:
    """Traces with spans waiting whose last span arrived after `after` and before
    `before_us`, in settling order, at most MAX_SETTLED_TRACES; and the mark they end at."""
    t = s.otlp_spans.c
    last = func.max(t.received_at_us)
    later = or_(last > after.last_us, and_(last == after.last_us, t.trace > after.trace))
    query = (
        select(t.trace, last.label("last"))
        .where(t.decided_at_us.is_(None))
        .group_by(t.trace)
        .having(and_(later, last < before_us))
        .order_by(last, t.trace)
        .limit(MAX_SETTLED_TRACES)
    )
    rows = conn.execute(query).all()
    if len(rows) < MAX_SETTLED_TRACES:
        return [row.trace for row in rows], SettleMark(before_us)
    return [row.trace for row in rows], SettleMark(int(rows[-1].last), rows[-1].trace)


def _quiet_traces(conn: Connection, before_us: int, exclude: Iterable[str]) -> list[str]:
    t = s.otlp_spans.c
    query = (
        select(t.trace)
        .where(t.decided_at_us.is_(None))
        .group_by(t.trace)
        .having(func.max(t.received_at_us) < before_us)
        .order_by(t.trace)
        .limit(MAX_QUIET_TRACES)
    )
    excluded = set(exclude)
    return [trace for trace in conn.scalars(query) if trace not in excluded]


def _quiet_conversations(conn: Connection, before_us: int) -> list[QuietConversation]:
    """Conversations that heard nothing since `before_us`, with their task's owner and
    status (a task already ended, by its application, or never stored, is only forgotten)."""
    c, t = s.otlp_conversations.c, s.tasks.c
    query = (
        select(c.task, t.customer, t.status, c.last_end_us, c.run_end_us, c.run_failed)
        .select_from(s.otlp_conversations.outerjoin(s.tasks, t.id == c.task))
        .where(c.received_at_us < before_us)
        .order_by(c.task)
        .limit(MAX_QUIET_TRACES)
    )
    return [QuietConversation(*row) for row in conn.execute(query)]


def _mark_decided(conn: Connection, decided: Sequence[tuple[str, str]], now_us: int) -> None:
    if not decided:
        return
    t = s.otlp_spans.c
    by_trace: dict[str, list[str]] = defaultdict(list)
    for trace, span in decided:
        by_trace[trace].append(span)
    for trace, spans in by_trace.items():
        for chunk in chunks(spans):
            conn.execute(
                update(s.otlp_spans)
                .where(and_(t.trace == trace, t.span.in_(chunk)))
                .values(decided_at_us=now_us)
            )


def _remember_conversations(
    conn: Connection, marks: dict[str, ConversationRow], now_us: int
) -> None:
    """Add what was learnt of each conversation to what is stored: the latest moment and
    the latest run win, whatever order they were learnt in."""
    if not marks:
        return
    c = s.otlp_conversations.c
    stored: dict[str, Any] = {}
    for chunk in chunks(sorted(marks)):
        for row in conn.execute(select(s.otlp_conversations).where(c.task.in_(chunk))):
            stored[row.task] = row
    for task, mark in sorted(marks.items()):
        old = stored.get(task)
        if old is None:
            conn.execute(
                s.otlp_conversations.insert().values(
                    task=task,
                    last_end_us=mark.last_end_us,
                    run_end_us=mark.run_end_us,
                    run_failed=mark.run_failed,
                    received_at_us=now_us,
                )
            )
            continue
        run = max((old.run_end_us, old.run_failed), (mark.run_end_us, mark.run_failed))
        conn.execute(
            update(s.otlp_conversations)
            .where(c.task == task)
            .values(
                last_end_us=max(old.last_end_us, mark.last_end_us),
                run_end_us=run[0],
                run_failed=run[1],
                received_at_us=now_us,
            )
        )


def _forget_conversations(conn: Connection, tasks: list[str]) -> None:
    c = s.otlp_conversations.c
    for chunk in chunks(sorted(tasks)):
        conn.execute(delete(s.otlp_conversations).where(c.task.in_(chunk)))
