"""Writing records: POST /v1/events, /v1/traces (OTLP/HTTP) and /v1/attestations."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from payoff.api import examples
from payoff.api.auth import Caller, Sender, Writer
from payoff.api.body import BoundedJsonRoute, read_body
from payoff.api.config import ServerConfig
from payoff.api.models import ERRORS, Attested, IngestAnswer
from payoff.service import attestations, http_records
from payoff.service.clock import now_us
from payoff.service.http_records import RecordsAnswer, TooManyRecords
from payoff.service.ingest import BuiltBatch, Line, build_batch
from payoff.service.otlp import Receiver, SpanReport, arrive
from payoff.sources import otlp

router = APIRouter(prefix="/v1", responses=ERRORS, route_class=BoundedJsonRoute)

EVENTS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "array", "items": {"type": "object"}},
                **examples.EVENTS["application/json"],
            },
            "application/x-ndjson": {
                "schema": {"type": "string"},
                **examples.EVENTS["application/x-ndjson"],
            },
        },
    }
}
TRACES_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
            "application/json": {
                "schema": {"type": "object"},
                **examples.TRACES["application/json"],
            },
        },
    }
}
ATTESTATION_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                **examples.ATTESTATION["application/json"],
            }
        },
    }
}
INLINE_BYTES = 64 * 1024
"""Bodies up to this size are split into records on the event loop, larger ones on a thread
(splitting megabytes takes milliseconds, which would hold up every other request)."""
INLINE_RECORDS = 16
"""Requests up to this many records (and INLINE_BYTES) are decoded on the event loop,
larger ones on a thread."""
BUILDER_RECORDS = 200
"""Requests from this many records are built in the builder process, when there is one."""


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status, media_type="application/json")


async def _write_lines(
    request: Request, lines: list[tuple[int, bytes]], customer: str | None = None
) -> RecordsAnswer:
    """Build, check and write the records; with `customer` (a customer key's), only its
    signals are taken (403 otherwise, nothing written)."""
    batch, problems = await _build(request.app.state, lines)
    if customer is not None:
        await run_in_threadpool(
            http_records.check_customer_records, request.app.state.store, batch, customer
        )
    http_records.refuse_unsigned_verdicts(batch, problems)
    written = await asyncio.wrap_future(request.app.state.writer.submit(batch))
    answer = http_records.answer_records(len(lines), batch, problems, written)
    request.app.state.metrics.count_records(answer.statuses)
    return answer


async def _build(state: Any, lines: list[tuple[int, bytes]]) -> BuiltBatch:
    inline = len(lines) <= INLINE_RECORDS and sum(len(line) for _, line in lines) <= INLINE_BYTES
    if inline:  # tens of microseconds: less than a thread hop
        batch, problems = build_batch(state.catalog, None, lines)
    elif state.builder is not None and len(lines) >= BUILDER_RECORDS:
        # Decoding and costing are pure Python: in another process they run beside the
        # writer and the event loop instead of taking turns with them for one interpreter.
        batch, problems = await state.builder.build(None, lines)
    else:
        batch, problems = await run_in_threadpool(build_batch, state.catalog, None, lines)
    return BuiltBatch(batch, problems)


@router.post(
    "/events",
    response_model=IngestAnswer,
    openapi_extra=EVENTS_BODY,
    summary="Write records v1: a JSON array or JSON Lines",
)
async def post_events(request: Request, caller: Sender) -> Response:
    """Each record is answered alone: accepted, duplicate, conflict or rejected with the reason.

    A retried request never double-counts: records already stored are duplicates. The
    answer comes after the records are committed to disk. An ingest or admin key sends any
    record; a customer key sends signals about its own tasks and outcomes (403 otherwise).
    """
    lines = await _lines_of(request, request.app.state.config)
    return _json((await _write_lines(request, lines, caller.customer)).as_json())


async def _lines_of(request: Request, config: ServerConfig) -> list[Line]:
    """The records of the request's body; the body itself is dropped on return, so that a
    request holds its records and not the body beside them."""
    body = await read_body(request, config.max_body_bytes)
    if len(body) <= INLINE_BYTES:
        return http_records.split_body(body, config.max_records)
    return await run_in_threadpool(http_records.split_body, body, config.max_records)


@router.post(
    "/traces",
    openapi_extra=TRACES_BODY,
    summary="OTLP/HTTP trace export: GenAI spans become usage records",
    responses={200: {"content": {"application/json": {}, "application/x-protobuf": {}}}},
)
async def post_traces(request: Request, _: Writer) -> Response:
    """Protobuf or JSON, as OTLP/HTTP sends them; the answer is an ExportTraceServiceResponse."""
    config = request.app.state.config
    body = await read_body(request, config.max_body_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    export = await run_in_threadpool(otlp.parse_export, body, content_type)
    spans = sum(len(s.spans) for r in export.resource_spans for s in r.scope_spans)
    if spans > config.max_records:
        raise TooManyRecords(
            f"{spans} spans in one export; at most {config.max_records} are accepted"
        )
    arrival = await run_in_threadpool(arrive, export)
    receiver: Receiver = request.app.state.receiver
    report = await asyncio.wrap_future(
        request.app.state.writer.call(lambda: receiver.receive(arrival, now_us))
    )
    return otlp_response(content_type, report)


MAX_REFUSALS_NAMED = 20
"""Refused spans named one by one in an OTLP partial success; the rest are counted."""


def otlp_response(content_type: str, report: SpanReport) -> Response:
    """An ExportTraceServiceResponse: refusals of this export's spans as a partial success."""
    parts = [f"{report.ignored} spans without GenAI usage ignored"] if report.ignored else []
    if report.traced_twice:
        parts.append(f"{report.traced_twice} spans of calls traced twice, billed once")
    parts += _refusals("spans refused", report.refused)
    parts += _refusals(
        "spans of earlier exports refused as their run ended", report.refused_earlier
    )
    reply = ExportTraceServiceResponse()
    if parts:  # with no span rejected, OTLP reads the message as a warning
        reply.partial_success.rejected_spans = len(report.refused)
        reply.partial_success.error_message = "; ".join(parts)
    if content_type == "application/json":
        return _json(MessageToDict(reply))
    return Response(reply.SerializeToString(), media_type="application/x-protobuf")


def _refusals(what: str, refused: list[otlp.Refusal]) -> list[str]:
    if not refused:
        return []
    by_code = Counter(refusal.code for refusal in refused)
    counts = ", ".join(f"{code} {number}" for code, number in sorted(by_code.items()))
    named = [f"span {r.span}: {r.reason}" for r in refused[:MAX_REFUSALS_NAMED]]
    more = len(refused) - len(named)
    return [f"{len(refused)} {what} ({counts})", *named] + ([f"{more} more"] if more else [])


@router.post(
    "/attestations",
    response_model=Attested,
    openapi_extra=ATTESTATION_BODY,
    summary="A customer's signed verdict on an outcome",
)
async def post_attestation(
    request: Request,
    caller: Caller,
    payoff_signature: Annotated[
        str | None, Header(description="t=<unix seconds>,v1=<hex HMAC-SHA256 of '<t>.<raw body>'>")
    ] = None,
) -> Response:
    """Signed with the customer's webhook secret: `payoff-signature: t=<unix>,v1=<hex>`.

    Refused: a bad signature (401), a timestamp more than 300 s away (401), an id already
    received (409), a verdict the outcome's lifecycle does not allow (422).
    """
    body = await read_body(request, attestations.MAX_ATTESTATION_BYTES)
    state = request.app.state
    done = await run_in_threadpool(
        attestations.receive,
        state.store,
        state.writer,
        state.catalog,
        body,
        payoff_signature,
        caller.customer,
    )
    return _json(done)
