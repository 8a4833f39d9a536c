"""A task: one agent run, its steps, its outcome, its status and its budget.

Every method builds a record (format version 1, or 2 when a model call reports details:
audio, image or video tokens, one-hour cache writes, web searches), has the Meter validate
it with the ledger's own decoder (a bad record raises RecordError here, at the call site)
and hand it to the sink. The task keeps running totals (visible and hidden tokens, cost
from the local catalog) in a TaskSpend that the Meter's BudgetBook checks and updates,
without asking the ledger, the same way on every sink.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import threading
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from payoff.core.errors import RecordError
from payoff.core.tokens import DETAIL_FIELDS, TokenCounts, UsageDetails
from payoff.sdk.budget import (
    Budget,
    Remaining,
    Step,
    TaskSpend,
    month_of,
    parse_usd_argument,
)
from payoff.sdk.ids import new_id
from payoff.sdk.streams import RecordedStream, StreamUsage, is_stream
from payoff.sources.providers import (
    model_from_response,
    provider_for_format,
    usage_details_from_response,
)

if TYPE_CHECKING:
    from payoff.sdk.meter import Meter

logger = logging.getLogger("payoff.sdk")

UNKNOWN_USAGE_UNIT = "llm_call_without_usage"
"""The unit of a step whose stream carried no usage: a custom step, unpriced (cost unknown)."""

_current: contextvars.ContextVar[Task | None] = contextvars.ContextVar("payoff_task", default=None)


def current_task() -> Task | None:
    """The task of the innermost `with meter.task(...)` block around this code, if any."""
    return _current.get()


class Task:
    """Made by `Meter.task`; use it as a context manager, or call `open` and `end` yourself."""

    def __init__(
        self,
        meter: Meter,
        customer: str,
        type: str | None,
        id: str | None,
        budget: Budget | None,
        attributes: dict[str, str] | None,
    ) -> None:
        self.meter = meter
        self.customer = customer
        self.type = type
        self.id = id or new_id("task")
        self.attributes = dict(attributes or {})
        self.status: str | None = None
        self.spend = TaskSpend(self.id, customer, budget or Budget())
        self._lock = threading.RLock()
        self._context_tokens: list[contextvars.Token[Task | None]] = []

    # What the task spent so far (see TaskSpend), read-only here.

    @property
    def budget(self) -> Budget:
        return self.spend.budget

    @property
    def steps(self) -> int:
        return self.spend.steps

    @property
    def unpriced_steps(self) -> int:
        return self.spend.unpriced_steps

    @property
    def tokens_total(self) -> int:
        return self.spend.tokens_total

    @property
    def tokens_visible(self) -> int:
        return self.spend.tokens_visible

    @property
    def tokens_hidden(self) -> int:
        return self.spend.tokens_hidden

    @property
    def cost_nanousd(self) -> int:
        return self.spend.cost_nanousd

    @property
    def flags(self) -> list[str]:
        """Budgets this task went over, in the order it did (flagged, enforced or not)."""
        return self.spend.flags

    # -- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> Task:
        self.open()
        self._context_tokens.append(_current.set(self))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._context_tokens:
            _current.reset(self._context_tokens.pop())
        if exc_type is None:
            self.end("completed")
            return
        # The agent's own exception propagates untouched (this returns None): a failure to
        # report the failed status is logged, never raised in its place.
        try:
            self.end("failed")
        except Exception:
            logger.exception("payoff: could not record task %s as failed", self.id)

    def open(self) -> None:
        """Report the task as `open`: it then exists in the ledger before its first step."""
        with self._lock:
            if self.status is None:
                self._emit_status("open")

    def end(self, status: str = "completed") -> None:
        """Report the task's final status (`completed`, `failed` or `abandoned`), once."""
        with self._lock:
            if self.status in (None, "open"):
                self._emit_status(status)

    def _emit_status(self, status: str) -> None:
        record: dict[str, Any] = {
            "record": "task",
            "id": self.id,
            "customer": self.customer,
            "status": status,
            "time": _now_text(),
        }
        if self.type is not None:
            record["type"] = self.type
        self.meter.emit(record)
        self.status = status

    # -- steps ----------------------------------------------------------------------------

    def record(
        self,
        response: Any,
        *,
        visible: bool = False,
        usage_format: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        batch: bool = False,
        attributes: dict[str, str] | None = None,
    ) -> Any:
        """Record one model call from its SDK response (or dict, or usage object).

        Returns the response, so `answer = task.record(client....create(...))` reads well.
        Given a stream, returns a wrapper to iterate instead: it passes every chunk through
        and records the step when the stream ends. Raises BudgetExceeded after recording
        the step when an enforced budget was already exceeded before it.
        """
        if is_stream(response):
            return self._record_stream(
                response, visible, usage_format, provider, model, batch, attributes
            )
        found_format, counts, details = usage_details_from_response(response, usage_format)
        model = model or model_from_response(response)
        self._record_llm(
            provider or provider_for_format(found_format),
            model,
            (counts, details),
            visible,
            batch,
            attributes,
        )
        return response

    def _record_stream(
        self,
        stream: Any,
        visible: bool,
        usage_format: str | None,
        provider: str | None,
        model: str | None,
        batch: bool,
        attributes: dict[str, str] | None,
    ) -> RecordedStream:
        if usage_format is not None:
            provider_for_format(usage_format)  # an unknown format is refused now, not at the end
        started = _now()

        def on_end(usage: StreamUsage) -> None:
            found = usage.result()
            if found is None:
                self._record_unknown(provider, model or usage.model, visible, attributes, started)
                return
            found_format, counts, details, streamed_model = found
            self._record_llm(
                provider or provider_for_format(found_format),
                model or streamed_model,
                (counts, details),
                visible,
                batch,
                attributes,
                started,
            )

        return RecordedStream(stream, on_end)

    def _record_llm(
        self,
        provider: str,
        model: str | None,
        usage: tuple[TokenCounts, UsageDetails],
        visible: bool,
        batch: bool,
        attributes: dict[str, str] | None,
        moment: dt.datetime | None = None,
    ) -> None:
        if model is None:
            raise RecordError("the response names no model; pass model=...", field="model")
        counts, details = usage
        moment = moment or _now()
        record = self._usage_record(moment, "llm", attributes, visible)
        record.update(
            provider=provider,
            model=model,
            input_tokens=counts.input,
            cache_read_tokens=counts.cache_read,
            cache_write_tokens=counts.cache_write,
            output_tokens=counts.output,
            reasoning_tokens=counts.reasoning,
        )
        if any(details):
            # Format version 2, only when it is needed: a text-only call stays a version-1
            # record, which any ledger reads.
            record["version"] = 2
            record.update({DETAIL_FIELDS[name]: n for name, n in details._asdict().items() if n})
        if batch:
            record["batch"] = True
        costs = self.meter.cost_nanousd(provider, model, batch, moment, counts, visible, details)
        visible_tokens = counts.output - counts.reasoning if visible else 0
        self._add_step(record, Step(counts.total, visible_tokens, costs), moment)

    def _record_unknown(
        self,
        provider: str | None,
        model: str | None,
        visible: bool,
        attributes: dict[str, str] | None,
        moment: dt.datetime,
    ) -> None:
        logger.warning(
            "payoff: a stream of task %s carried no usage (for OpenAI chat, pass "
            "stream_options={'include_usage': True}); recorded as a step of unknown cost",
            self.id,
        )
        record = self._usage_record(moment, "custom", attributes, visible)
        record.update(quantity=1, unit=UNKNOWN_USAGE_UNIT)
        if provider is not None:
            record["provider"] = provider
        if model is not None:
            record["model"] = model
        self._add_step(record, Step(0, 0, None), moment)

    def tool(
        self,
        name: str,
        *,
        cost: str | Decimal | None = None,
        visible: bool = False,
        attributes: dict[str, str] | None = None,
    ) -> None:
        """Record one tool call; `cost` is USD as a decimal string ("0.004"), parsed exactly."""
        moment = _now()
        record = self._usage_record(moment, "tool", attributes, visible)
        record["attributes"] = {**record.get("attributes", {}), "gen_ai.tool.name": name}
        cost_nanousd = None
        if cost is not None:
            cost_nanousd = parse_usd_argument(cost, "tool cost")
            record["cost"] = str(cost)
        self._add_step(record, Step(0, 0, cost_nanousd), moment)

    def _usage_record(
        self, moment: dt.datetime, kind: str, attributes: dict[str, str] | None, visible: bool
    ) -> dict[str, Any]:
        record: dict[str, Any] = {
            "record": "usage",
            "id": new_id("evt"),
            "time": _text(moment),
            "customer": self.customer,
            "task": self.id,
            "kind": kind,
        }
        if self.type is not None:
            record["task_type"] = self.type
        if visible:
            record["visible"] = True
        merged = {**self.attributes, **(attributes or {})}
        if merged:
            record["attributes"] = merged
        return record

    def _add_step(self, record: dict[str, Any], step: Step, moment: dt.datetime) -> None:
        """Emit a step's record and count it against the budgets; raise a refusal after."""
        book = self.meter.budgets
        with self._lock:
            if self.status is None:
                self.open()
            crossing = book.crossing(self.spend, step, month_of(moment))
            if crossing.crossed:
                # The step that crossed a budget says so in the ledger, for audits.
                attributes = record.setdefault("attributes", {})
                attributes["payoff.budget_exceeded"] = ",".join(crossing.crossed)
            self.meter.emit(record)
            refusal = book.add(self.spend, step, crossing)
        if refusal is not None:
            raise refusal

    def check(self) -> None:
        """Raise BudgetExceeded if an enforced budget is already exceeded: call it before a
        model call to stop spending, rather than learn it at the next `record`."""
        with self._lock:
            refusal = self.meter.budgets.refusal(self.spend, month_of(_now()))
        if refusal is not None:
            raise refusal

    def remaining(self) -> Remaining:
        """What is left of each budget set on this task and its customer (see Remaining)."""
        with self._lock:
            return self.meter.budgets.remaining(self.spend, month_of(_now()))

    # -- outcomes -------------------------------------------------------------------------

    def outcome(
        self,
        type: str,
        *,
        value: str | Decimal | None = None,
        id: str | None = None,
        evidence_digest: str | None = None,
    ) -> str:
        """Claim an outcome of this task (`value`: money as a decimal string); its id."""
        with self._lock:
            if self.status is None:
                self.open()
            record: dict[str, Any] = {
                "record": "outcome",
                "id": id or new_id("out"),
                "task": self.id,
                "customer": self.customer,
                "type": type,
                "time": _now_text(),
            }
            if value is not None:
                if not isinstance(value, str | Decimal):
                    raise TypeError('an outcome value is a decimal string such as "120.00"')
                record["value"] = str(value)
            if evidence_digest is not None:
                record["evidence_digest"] = evidence_digest
            self.meter.emit(record)
            return str(record["id"])

    def signal(
        self, name: str, *, outcome: str | None = None, attributes: dict[str, str] | None = None
    ) -> str:
        """Record a signal about this task, or one of its outcomes; its id (see
        `Meter.signal`)."""
        return self.meter.signal(name, task=self.id, outcome=outcome, attributes=attributes)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _text(moment: dt.datetime) -> str:
    return moment.isoformat()


def _now_text() -> str:
    return _text(_now())
