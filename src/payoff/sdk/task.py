"""A task: one agent run, its steps, its outcome, its status and its budget.

Every method builds a record v1, has the Meter validate it with the ledger's own decoder
(a bad record raises RecordError here, at the call site) and hand it to the sink. The task
keeps running totals (visible and hidden tokens, cost from the local catalog) so that its
budget can be checked without asking the ledger, the same way on every sink.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import threading
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import TYPE_CHECKING, Any

from payoff.core.errors import BudgetExceeded, RecordError
from payoff.core.tokens import TokenCounts
from payoff.sdk.budget import (
    COST,
    CUSTOMER_COST,
    HIDDEN_TOKENS,
    Budget,
    Remaining,
    exceeded,
    month_of,
    usd_nanousd,
)
from payoff.sdk.ids import new_id
from payoff.sdk.streams import RecordedStream, StreamUsage, is_stream
from payoff.sources.providers import model_from_response, provider_for_format, usage_from_response

if TYPE_CHECKING:
    from payoff.sdk.meter import Meter

logger = logging.getLogger("payoff.sdk")

UNKNOWN_USAGE_UNIT = "llm_call_without_usage"
"""The unit of a step whose stream carried no usage: a custom step, unpriced (cost unknown)."""

_current: contextvars.ContextVar[Task | None] = contextvars.ContextVar("payoff_task", default=None)


def current_task() -> Task | None:
    """The task of the innermost `with meter.task(...)` block around this code, if any."""
    return _current.get()


@dataclass(frozen=True)
class _Step:
    """What one step adds to its task's totals."""

    tokens_total: int
    tokens_visible: int
    cost_nanousd: int | None  # None: the catalog cannot price it, the cost is unknown


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
        self.budget = budget or Budget()
        self.attributes = dict(attributes or {})
        self.status: str | None = None
        self.steps = 0
        self.unpriced_steps = 0
        self.tokens_total = 0
        self.tokens_visible = 0
        self.cost_nanousd = 0
        self.flags: list[str] = []
        """Budgets this task went over, in the order it did (flagged, enforced or not)."""
        self._lock = threading.RLock()
        self._context_tokens: list[contextvars.Token[Task | None]] = []

    @property
    def tokens_hidden(self) -> int:
        return self.tokens_total - self.tokens_visible

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
        found_format, counts = usage_from_response(response, usage_format)
        model = model or model_from_response(response)
        self._record_llm(
            provider or provider_for_format(found_format), model, counts, visible, batch, attributes
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
            found_format, counts, streamed_model = found
            self._record_llm(
                provider or provider_for_format(found_format),
                model or streamed_model,
                counts,
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
        counts: TokenCounts,
        visible: bool,
        batch: bool,
        attributes: dict[str, str] | None,
        moment: dt.datetime | None = None,
    ) -> None:
        if model is None:
            raise RecordError("the response names no model; pass model=...", field="model")
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
        if batch:
            record["batch"] = True
        costs = self.meter.cost_nanousd(provider, model, batch, moment, counts, visible)
        visible_tokens = counts.output - counts.reasoning if visible else 0
        self._add_step(record, _Step(counts.total, visible_tokens, costs), moment)

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
        self._add_step(record, _Step(0, 0, None), moment)

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
            cost_nanousd = usd_nanousd(cost, "tool cost")
            record["cost"] = str(cost)
        self._add_step(record, _Step(0, 0, cost_nanousd), moment)

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

    def _add_step(self, record: dict[str, Any], step: _Step, moment: dt.datetime) -> None:
        """Emit a step's record, add it to the totals, and apply the budgets."""
        with self._lock:
            if self.status is None:
                self.open()
            period = month_of(moment)
            before = self._over(self.meter.customer_spend_nanousd(self.customer, period))
            cost = step.cost_nanousd or 0
            after_customer = self.meter.customer_spend_nanousd(self.customer, period) + cost
            after = self._over(
                after_customer,
                tokens_hidden=self.tokens_hidden + step.tokens_total - step.tokens_visible,
                cost_nanousd=self.cost_nanousd + cost,
            )
            crossed = [name for name in after if name not in before]
            if crossed:
                # The step that crossed a budget says so in the ledger, for audits.
                record.setdefault("attributes", {})["payoff.budget_exceeded"] = ",".join(crossed)
            self.meter.emit(record)
            self.meter.add_customer_spend(self.customer, period, cost)
            self.steps += 1
            self.tokens_total += step.tokens_total
            self.tokens_visible += step.tokens_visible
            self.cost_nanousd += cost
            self.unpriced_steps += step.cost_nanousd is None
            for name in crossed:
                self._flag(name)
            refusal = self._refusal(before, period)
        if refusal is not None:
            raise refusal

    def _over(
        self,
        customer_spend_nanousd: int,
        *,
        tokens_hidden: int | None = None,
        cost_nanousd: int | None = None,
    ) -> dict[str, tuple[int, int, bool]]:
        """Budgets strictly over their limit: name -> (limit, spent, enforced)."""
        tokens_hidden = self.tokens_hidden if tokens_hidden is None else tokens_hidden
        cost_nanousd = self.cost_nanousd if cost_nanousd is None else cost_nanousd
        over: dict[str, tuple[int, int, bool]] = {}
        budget = self.budget
        if budget.hidden_tokens is not None and exceeded(budget.hidden_tokens, tokens_hidden):
            over[HIDDEN_TOKENS] = (budget.hidden_tokens, tokens_hidden, budget.enforce)
        if budget.cost_nanousd is not None and exceeded(budget.cost_nanousd, cost_nanousd):
            over[COST] = (budget.cost_nanousd, cost_nanousd, budget.enforce)
        customer = self.meter.customer_budget_of(self.customer)
        if customer is not None and exceeded(
            customer.cost_per_period_nanousd, customer_spend_nanousd
        ):
            over[CUSTOMER_COST] = (
                customer.cost_per_period_nanousd,
                customer_spend_nanousd,
                customer.enforce,
            )
        return over

    def _flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)
            logger.warning("payoff: task %s went over its %s budget", self.id, name)

    def _refusal(
        self, over_before: dict[str, tuple[int, int, bool]], period: str
    ) -> BudgetExceeded | None:
        """The error for the first enforced budget that was over before this step."""
        for name, (limit, _, enforced) in over_before.items():
            if enforced:
                spent = self._spent(name, period)
                return BudgetExceeded(self.id, name, limit, spent)
        return None

    def _spent(self, name: str, period: str) -> int:
        if name == HIDDEN_TOKENS:
            return self.tokens_hidden
        if name == COST:
            return self.cost_nanousd
        return self.meter.customer_spend_nanousd(self.customer, period)

    def check(self) -> None:
        """Raise BudgetExceeded if an enforced budget is already exceeded: call it before a
        model call to stop spending, rather than learn it at the next `record`."""
        with self._lock:
            period = month_of(_now())
            refusal = self._refusal(
                self._over(self.meter.customer_spend_nanousd(self.customer, period)), period
            )
        if refusal is not None:
            raise refusal

    def remaining(self) -> Remaining:
        """What is left of each budget set on this task and its customer (see Remaining)."""
        with self._lock:
            period = month_of(_now())
            spend = self.meter.customer_spend_nanousd(self.customer, period)
            customer = self.meter.customer_budget_of(self.customer)
            budget = self.budget
            return Remaining(
                hidden_tokens=None
                if budget.hidden_tokens is None
                else budget.hidden_tokens - self.tokens_hidden,
                cost_nanousd=None
                if budget.cost_nanousd is None
                else budget.cost_nanousd - self.cost_nanousd,
                customer_cost_nanousd=None
                if customer is None
                else customer.cost_per_period_nanousd - spend,
                exceeded=tuple(self._over(spend)),
            )

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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _text(moment: dt.datetime) -> str:
    return moment.isoformat()


def _now_text() -> str:
    return _text(_now())
