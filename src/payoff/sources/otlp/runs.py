"""Judging runs: from all the spans known of a trace, the records they stand for.

What depends on a whole run is decided here, from every span of it at once, so that the
answer is the same however the spans were batched into exports:

- the root run of a step: the outermost run span (`invoke_agent`, OpenInference `AGENT`, an
  AI SDK `ai.generateText` call) at or above it, known when its ancestry reaches a local root
  (a span without a parent, or with a remote one);
- its customer, task type and conversation: its own, else its nearest ancestor's, else (for
  customer and task type) its resource's; a task type of last resort is the root run's name;
- one call, once: two model-call spans of a trace with the same `gen_ai.response.id` and the
  same provider are one call traced twice (the anthropic SDK traces each call itself, beside
  or below an instrumentation's span of it); the span reporting the most buckets is kept,
  the lowest span id on a tie, and the other is counted in `traced_twice`;
- the visible step: the last model call under each root run, unless the application said;
- the end of the task: each root run that ended closes its trace's task, unless its steps go
  to a conversation (which closes when it goes quiet) or every step of it was refused.

`decide` takes the spans and a mode saying what to do with an ancestry that does not reach a
local root: wait for it (COMPLETE: the server, while more spans may come), judge what is known
without a run (EXPORT: one export on its own), or take its top for a local root (QUIET: a trace
that has gone quiet, whose missing spans are not coming).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from payoff.sources.otlp import conventions as c
from payoff.sources.otlp.records import (
    Owner,
    Record,
    model_call_record,
    task_record,
    tool_record,
)
from payoff.sources.otlp.spans import (
    MODEL_CALL,
    NO_CUSTOMER,
    OTHER,
    RUN,
    TOOL,
    Refusal,
    Refused,
    Span,
    text,
)

CallKey = tuple[str, str, str]
"""(trace, billing provider, response id): what makes two spans one call."""

COMPLETE = "complete"
EXPORT = "export"
QUIET = "quiet"


@dataclass
class ConversationMark:
    """What a decision learnt of a conversation task: its owner, its latest moment, and
    its latest root run (whose status the conversation ends with when it goes quiet)."""

    customer: str
    last_end_ns: int
    run_end_ns: int = 0
    run_failed: bool = False

    def merge(self, other: ConversationMark) -> None:
        self.last_end_ns = max(self.last_end_ns, other.last_end_ns)
        if (other.run_end_ns, other.run_failed) > (self.run_end_ns, self.run_failed):
            self.run_end_ns, self.run_failed = other.run_end_ns, other.run_failed


@dataclass
class Decision:
    """The records of the spans decided, and an account of the rest."""

    records: list[Record] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    ignored: int = 0
    """Spans decided that are neither steps nor runs (HTTP, database, aggregates, ...)."""
    traced_twice: int = 0
    """Model-call spans decided that another span of their trace stands for (one call)."""
    decided: list[Span] = field(default_factory=list)
    waiting: list[Span] = field(default_factory=list)
    """Spans whose ancestry does not reach a local root yet (mode COMPLETE only)."""
    conversations: dict[str, ConversationMark] = field(default_factory=dict)


class _Node:
    __slots__ = ("complete", "kind", "parent", "resolved", "run", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self.kind = span.kind
        self.parent: _Node | None = None
        self.resolved = False
        self.complete = False
        self.run: _Node | None = None


def decide(spans: Iterable[Span], mode: str) -> Decision:
    """The records of `spans` (any mix of traces), judged run by run; see the module."""
    return _Judge(list(spans), mode).decision()


class _Judge:
    def __init__(self, spans: list[Span], mode: str) -> None:
        self.mode = mode
        self.nodes = [_Node(span) for span in spans]
        by_key = {node.span.key: node for node in self.nodes}
        for node in self.nodes:
            if not node.span.local_root:
                node.parent = by_key.get(node.span.parent_key)
        # An acyclic chain of ancestors is at most as long as the list; a longer walk loops.
        self.max_walk = len(self.nodes) + 1
        self.memo: dict[tuple[str, ...], dict[_Node, str | Refused | None]] = {}
        self.first_run: dict[str, _Node] = {}
        for node in self.nodes:
            self._resolve(node)

    def _resolve(self, node: _Node) -> None:
        """Set completeness and root run for `node` and every unresolved ancestor, once."""
        path: list[_Node] = []
        at: _Node | None = node
        complete, run = False, None  # stays so for a cycle of parents
        for _ in range(self.max_walk):
            assert at is not None
            if at.resolved:
                complete, run = at.complete, at.run
                break
            path.append(at)
            if at.span.local_root or (at.parent is None and self.mode == QUIET):
                complete = True
                break
            at = at.parent
            if at is None:
                break  # the ancestry leaves the spans known: not judged as a run
        for at in reversed(path):
            if complete and run is None and at.kind == RUN:
                run = at
                self.first_run.setdefault(at.span.trace, at)
            at.resolved, at.complete, at.run = True, complete, (run if complete else None)

    def decision(self) -> Decision:
        result = Decision()
        chosen = []
        for node in self.nodes:
            if node.complete or self.mode != COMPLETE:
                chosen.append(node)
                result.decided.append(node.span)
            else:
                result.waiting.append(node.span)
        chosen.sort(key=lambda n: (n.span.end_ns, n.span.key))
        twice = _traced_twice(chosen)
        visible = self._inferred_visible(chosen, twice)
        with_steps: set[_Node] = set()
        with_records: set[_Node] = set()
        for node in chosen:
            if node in twice:
                result.traced_twice += 1
            elif node.kind == OTHER:
                result.ignored += 1
            elif node.kind in (MODEL_CALL, TOOL):
                if node.run is not None:
                    with_steps.add(node.run)
                if self._step(node, node in visible, result) and node.run is not None:
                    with_records.add(node.run)
        ends: dict[tuple[object, object], tuple[int, Record]] = {}
        for node in chosen:
            if node.kind == RUN and node.run is node:
                if node in with_steps and node not in with_records:
                    continue  # every step refused: no empty task is closed
                self._run_end(node, result, ends)
        # Several root runs of one trace close its task once per status, at the last of them.
        result.records.extend(record for _, record in sorted(ends.values(), key=_end_order))
        return result

    def _inferred_visible(self, chosen: list[_Node], twice: set[_Node]) -> set[_Node]:
        """The last model call under each root run, unless any of them says itself.

        An application that sets `payoff.visible` on a step is trusted for that whole run:
        guessing beside it could mark a second step visible. A call that reported no usage
        still counts: the answer's call stays the answer, priced or not.
        """
        last: dict[_Node, _Node] = {}
        told: set[_Node] = set()
        for node in chosen:  # in end order: a later call replaces an earlier one
            run = node.run
            if node.kind != MODEL_CALL or run is None or node in twice:
                continue
            if c.VISIBLE in node.span.attributes:
                told.add(run)
            elif node.span.attributes.get(c.AI_SDK_VISIBLE) is not False:
                last[run] = node
        return {node for run, node in last.items() if run not in told}

    def _step(self, node: _Node, inferred_visible: bool, result: Decision) -> bool:
        span = node.span
        try:
            owner = self._owner(node)
            if node.kind == MODEL_CALL:
                record = model_call_record(span, owner, inferred_visible)
            else:
                record = tool_record(span, owner)
        except Refused as refusal:
            result.refused.append(Refusal(span.span, refusal.code, refusal.reason))
            return False
        result.records.append(record)
        if owner.task != span.trace:
            _mark(result, owner, ConversationMark(owner.customer, span.end_ns))
        return True

    def _run_end(
        self, node: _Node, result: Decision, ends: dict[tuple[object, object], tuple[int, Record]]
    ) -> None:
        span = node.span
        try:
            owner = self._owner(node)
            record = task_record(span, owner)
        except Refused as refusal:
            result.refused.append(Refusal(span.span, refusal.code, refusal.reason))
            return
        if owner.task != span.trace:
            # A conversation outlives each of its turns: one turn's end does not end it.
            mark = ConversationMark(owner.customer, span.end_ns, span.end_ns, span.failed)
            _mark(result, owner, mark)
            return
        key = (record["id"], record["status"])
        if key not in ends or ends[key][0] < span.end_ns:
            ends[key] = (span.end_ns, record)

    def _owner(self, node: _Node) -> Owner:
        span = node.span
        customer = self._inherited(node, c.CUSTOMERS)
        if customer is None:
            customer = _resource_text(span, c.CUSTOMERS)
        if customer is None:
            raise Refused(
                NO_CUSTOMER,
                "has no customer: set `payoff.customer` or `enduser.id` on the span, an "
                "ancestor span or the resource",
            )
        task_type = self._inherited(node, c.TASK_TYPES) or _resource_text(span, c.TASK_TYPES)
        if task_type is None:
            run = node.run or self.first_run.get(span.trace)
            if run is not None:
                task_type = text(run.span.attributes, c.TASK_TYPES + c.AGENT_NAMES)
        task = self._inherited(node, c.CONVERSATIONS) or span.trace
        return Owner(customer, task, task_type)

    def _inherited(self, node: _Node, keys: tuple[str, ...]) -> str | None:
        """The first of `keys` on the span, else on its nearest ancestor that has one."""
        memo = self.memo.setdefault(keys, {})
        path: list[_Node] = []
        found: str | Refused | None = None
        at: _Node | None = node
        for _ in range(self.max_walk):
            if at is None:
                break
            if at in memo:
                found = memo[at]
                break
            path.append(at)
            try:
                found = text(at.span.attributes, keys)
            except Refused as refusal:
                found = refusal
            if found is not None:
                break
            at = at.parent
        for at in path:
            memo[at] = found
        if isinstance(found, Refused):
            raise found
        return found


def _traced_twice(nodes: list[_Node]) -> set[_Node]:
    """The model-call spans that another span of their trace stands for (see the module).

    Which span is kept depends only on the spans, never on their order, so that a run judged
    from one export, from batches or from one span per export keeps the same one.
    """
    kept: dict[CallKey, _Node] = {}
    dropped: set[_Node] = set()
    for node in nodes:
        key = _call_key(node)
        if key is None:
            continue
        other = kept.get(key)
        if other is None:
            kept[key] = node
            continue
        if _preference(node) < _preference(other):
            kept[key], node = node, other
        dropped.add(node)
    return dropped


def _call_key(node: _Node) -> CallKey | None:
    """What identifies the call a model-call span reports, when it names its response."""
    if node.kind != MODEL_CALL:
        return None
    attributes = node.span.attributes
    response = attributes.get(c.RESPONSE_ID)
    if type(response) is not str or not response:
        return None
    try:
        provider = text(attributes, c.PROVIDER_KEYS)
    except Refused:
        return None  # refused when its record is made; never taken for another span's call
    if provider is None:
        return None
    return node.span.trace, c.billing_provider(provider), response


def _preference(node: _Node) -> tuple[int, str]:
    """The span that reports the most buckets and details first, then the lowest span id."""
    attributes = node.span.attributes.keys()
    reported = sum(1 for keys in c.REPORTED if not attributes.isdisjoint(keys))
    return -reported, node.span.span


def _resource_text(span: Span, keys: tuple[str, ...]) -> str | None:
    try:
        return text(span.resource, keys)
    except Refused as refusal:
        raise Refused(refusal.code, f"its resource's {refusal.reason}") from None


def _mark(result: Decision, owner: Owner, mark: ConversationMark) -> None:
    known = result.conversations.get(owner.task)
    if known is None:
        result.conversations[owner.task] = mark
    else:
        known.merge(mark)


def _end_order(end: tuple[int, Record]) -> tuple[int, str]:
    return end[0], str(end[1]["id"])
