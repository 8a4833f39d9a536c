"""Writing records: POST /v1/events, /v1/traces (OTLP/HTTP) and /v1/attestations."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Header, Request, Response
from fastapi.concurrency import run_in_threadpool
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from payoff.api import examples
from payoff.api.auth import Caller, Writer
from payoff.api.body import BoundedJsonRoute, read_body
from payoff.api.models import ERRORS, Attested, IngestAnswer
from payoff.service import attestations, http_records
from payoff.service.http_records import RecordsAnswer, TooManyRecords
from payoff.service.ingest import BuiltBatch, build_batch
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
INLINE_RECORDS = 16
"""Requests up to this many records are decoded on the event loop, larger ones on a thread."""
BUILDER_RECORDS = 200
"""Requests from this many records are built in the builder process, when there is one."""


def _json(value: Any, status: int = 200) -> Response:
    return Response(msgspec.json.encode(value), status, media_type="application/json")


async def _write_lines(request: Request, lines: list[tuple[int, bytes]]) -> RecordsAnswer:
    batch, problems = await _build(request.app.state, lines)
    http_records.refuse_unsigned_verdicts(batch, problems)
    written = await asyncio.wrap_future(request.app.state.writer.submit(batch))
    return http_records.answer_records(len(lines), batch, problems, written)


async def _build(state: Any, lines: list[tuple[int, bytes]]) -> BuiltBatch:
    if len(lines) <= INLINE_RECORDS:  # tens of microseconds: less than a thread hop
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
async def post_events(request: Request, _: Writer) -> Response:
    """Each record is answered alone: accepted, duplicate, conflict or rejected with the reason.

    A retried request never double-counts: records already stored are duplicates. The
    answer comes after the records are committed to disk.
    """
    config = request.app.state.config
    body = await read_body(request, config.max_body_bytes)
    lines = http_records.split_body(body, config.max_records)
    return _json((await _write_lines(request, lines)).as_json())


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
    conversion = await run_in_threadpool(otlp.records_from_export, export)
    answer = None
    if conversion.records:
        encode = msgspec.json.encode
        lines = [(n, encode(r)) for n, r in enumerate(conversion.records, start=1)]
        answer = await _write_lines(request, lines)
    return otlp_response(content_type, conversion, answer)


def otlp_response(
    content_type: str, conversion: otlp.Conversion, answer: RecordsAnswer | None
) -> Response:
    refused = len(conversion.refused) + (0 if answer is None else len(answer.problems))
    ignored = (
        [f"{conversion.ignored} spans without GenAI usage ignored"] if conversion.ignored else []
    )
    message = "; ".join(
        ignored
        + [f"span {span}: {reason}" for span, reason in conversion.refused[:20]]
        + [f"record {p['id']}: {p['reason']}" for p in (answer.problems[:20] if answer else [])]
    )
    reply = ExportTraceServiceResponse()
    if message:  # with no span rejected, OTLP reads the message as a warning
        reply.partial_success.rejected_spans = refused
        reply.partial_success.error_message = message
    if content_type == "application/json":
        return _json(MessageToDict(reply))
    return Response(reply.SerializeToString(), media_type="application/x-protobuf")


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
