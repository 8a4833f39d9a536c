"""One span to one record v1, once its run has said whose it is and which task it joins.

Each record is made valid v1 by construction: the checks below are those of payoff.records
that values read from spans could fail (lengths, bounds, cost syntax); the tests decode every
record made with payoff.records to keep the two in step.
"""

from __future__ import annotations

from typing import NamedTuple

from payoff.core.errors import RecordError
from payoff.core.tokens import DETAIL_FIELDS, MAX_TOKENS, TokenCounts, UsageDetails
from payoff.records import COST as COST_SYNTAX
from payoff.sources.otlp import conventions as c
from payoff.sources.otlp.spans import (
    BAD_COUNT,
    BAD_VALUE,
    NO_MODEL,
    NO_PROVIDER,
    TOO_LARGE,
    Attributes,
    Refused,
    Span,
    count,
    end_time,
    flag,
    quote,
    text,
)

UNKNOWN_USAGE_UNIT = "llm_call_without_usage"
"""The unit of a model call that reported no usage, as the SDK records one: unpriced."""

Record = dict[str, object]


class Owner(NamedTuple):
    """What a step's run decides for it: who is billed, which task, of what type."""

    customer: str
    task: str
    task_type: str | None


def model_call_record(span: Span, owner: Owner, inferred_visible: bool) -> Record:
    """A model call with usage; without usage, an unpriced step of one call."""
    attributes = span.attributes
    model = text(attributes, c.MODEL_KEYS)
    if model is None:
        raise Refused(NO_MODEL, f"names no model (one of {', '.join(c.MODEL_KEYS)})")
    told = flag(attributes, c.VISIBLE)
    provider = text(attributes, c.PROVIDER_KEYS)
    if c.USAGE_KEYS.isdisjoint(attributes):
        record = _step(span, owner, "custom")
        record.update(quantity="1", unit=UNKNOWN_USAGE_UNIT, model=model)
        if provider is not None:
            record["provider"] = c.billing_provider(provider)
    else:
        if provider is None:
            raise Refused(NO_PROVIDER, f"names no provider (one of {', '.join(c.PROVIDER_KEYS)})")
        record = _step(span, owner, "llm")
        record["provider"] = c.billing_provider(provider)
        record["model"] = model
        _add_details(record, attributes, _add_counts(record, attributes))
    record["visible"] = inferred_visible if told is None else told
    requested = attributes.get(c.REQUEST_MODEL)
    if type(requested) is str and requested and requested != model:
        _add_attribute(record, c.REQUEST_MODEL, requested)
    return record


def tool_record(span: Span, owner: Owner) -> Record:
    told = flag(span.attributes, c.VISIBLE)
    record = _step(span, owner, "tool")
    if told is not None:
        record["visible"] = told
    cost = span.attributes.get(c.COST)
    if cost is not None:
        if type(cost) is int and cost >= 0:
            cost = str(cost)
        if type(cost) is not str or not COST_SYNTAX.fullmatch(cost):
            raise Refused(
                BAD_VALUE,
                f"`{c.COST}` must be a decimal string of USD below 1,000,000,000 with at most 9 "
                f"decimal places, got {quote(cost)}",
            )
        record["cost"] = cost
    tool = text(span.attributes, c.TOOL_NAMES)
    if tool is not None:
        _add_attribute(record, "gen_ai.tool.name", tool)
    return record


def task_record(span: Span, owner: Owner) -> Record:
    """The end of a root run: its task completed, or failed when its span failed."""
    record: Record = {
        "record": "task",
        "id": owner.task,
        "customer": owner.customer,
        "status": "failed" if span.failed else "completed",
        "time": end_time(span),
    }
    if owner.task_type is not None:
        record["type"] = owner.task_type
    return record


def _step(span: Span, owner: Owner, kind: str) -> Record:
    """The fields every usage record of a span shares."""
    record: Record = {
        "record": "usage",
        "id": f"otel-{span.trace}-{span.span}",
        "time": end_time(span),
        "customer": owner.customer,
        "task": owner.task,
        "kind": kind,
    }
    if owner.task_type is not None:
        record["task_type"] = owner.task_type
    attributes = _record_attributes(span)
    if attributes:
        record["attributes"] = attributes
    return record


def _record_attributes(span: Span) -> dict[str, str]:
    """A few strings that say what the step was; never prompt or completion content."""
    kept: dict[str, str] = {}
    if span.name:
        kept["otel.span_name"] = span.name
    if span.scope:
        kept["otel.scope.name"] = span.scope
    for key in (c.OPERATION, "gen_ai.agent.name"):
        value = span.attributes.get(key)
        if type(value) is str and value:
            kept[key] = value
    if span.failed:
        # A failed call is still billed by the provider; saying so explains the cost.
        kept["otel.status_code"] = "ERROR"
    return kept


def _add_attribute(record: Record, key: str, value: str) -> None:
    attributes = record.setdefault("attributes", {})
    assert isinstance(attributes, dict)
    attributes[key] = value


def _add_counts(record: Record, attributes: Attributes) -> TokenCounts:
    """The five buckets, made inclusive: parts larger than their total were outside it."""
    input_tokens = count(attributes, c.INPUT_KEYS) or 0
    cache_read = count(attributes, c.CACHE_READ_KEYS) or 0
    cache_write = count(attributes, c.CACHE_WRITE_KEYS) or 0
    output_tokens = count(attributes, c.OUTPUT_KEYS) or 0
    reasoning = count(attributes, c.REASONING_KEYS) or 0
    if cache_read + cache_write > input_tokens:
        # The semconv asks for a total that includes cached tokens; an instrumentation that
        # reports it the Anthropic way (cache outside) gives itself away when the parts exceed
        # it. A total that is exclusive yet still larger than the parts cannot be told apart.
        input_tokens += cache_read + cache_write
    if reasoning > output_tokens:
        output_tokens += reasoning  # the Gemini way: thoughts beside the candidates
    if input_tokens > MAX_TOKENS or output_tokens > MAX_TOKENS:
        raise Refused(
            TOO_LARGE, f"counts more than {MAX_TOKENS:,} input or output tokens in one call"
        )
    record["input_tokens"] = input_tokens
    record["cache_read_tokens"] = cache_read
    record["cache_write_tokens"] = cache_write
    record["output_tokens"] = output_tokens
    record["reasoning_tokens"] = reasoning
    return TokenCounts(input_tokens, cache_read, cache_write, output_tokens, reasoning)


_DETAIL_NAMES = {field: name for name, field in DETAIL_FIELDS.items()}


def _add_details(record: Record, attributes: Attributes, counts: TokenCounts) -> None:
    """The parts a price may need apart (record format v2), when the span reports any.

    A record with none stays version 1, as an SDK record does. Details that do not fit the
    totals they are parts of are refused, never dropped: the call would be priced wrong.
    """
    found: dict[str, int] = {}
    for field, keys in c.DETAILS:
        value = count(attributes, keys)
        if value:
            found[field] = value
    if record["provider"] not in c.SEARCHES_NOT_BILLED_BY_REQUEST:
        searches = count(attributes, c.WEB_SEARCH_KEYS)
        if searches:
            found["web_search_requests"] = searches
    if not found:
        return
    details = UsageDetails(**{_DETAIL_NAMES[field]: value for field, value in found.items()})
    try:
        details.check(counts)
    except RecordError as exc:
        raise Refused(BAD_COUNT, f"reports usage details that do not fit: {exc}") from None
    record["version"] = 2
    record.update(found)
