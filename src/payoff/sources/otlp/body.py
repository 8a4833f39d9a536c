"""OTLP/HTTP trace export bodies, protobuf or JSON, parsed into an ExportTraceServiceRequest."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from payoff.core.errors import Unreadable, Unsupported
from payoff.nesting import too_deep, too_deep_reason

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
MAX_QUOTED = 80
"""Characters of an offending value quoted in an error."""


class OtlpError(Unreadable):
    """A body that is not a valid OTLP trace export."""


class UnsupportedContentType(Unsupported, OtlpError):
    """A body that is neither OTLP protobuf nor OTLP JSON."""


def parse_export(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """The export in an OTLP/HTTP body, protobuf or JSON; OtlpError says what is wrong."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == PROTOBUF:
        return _parse_protobuf(body)
    if media_type == JSON:
        return _parse_json(body)
    raise UnsupportedContentType(
        f"unsupported content type {content_type!r}: an OTLP/HTTP trace export is "
        f"{PROTOBUF} or {JSON}"
    )


def _parse_protobuf(body: bytes) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError:
        raise OtlpError(
            "the body is not a protobuf ExportTraceServiceRequest (wire format corrupt)"
        ) from None
    if body and not request.resource_spans:
        # Only unknown fields: valid protobuf, but not a trace export.
        raise OtlpError("the body is protobuf but holds no resourceSpans: not a trace export")
    return request


def _parse_json(body: bytes) -> ExportTraceServiceRequest:
    if too_deep(body):
        raise OtlpError(f"the body {too_deep_reason()}")
    try:
        document = json.loads(body)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise OtlpError(f"the body is not valid JSON ({exc})") from None
    except RecursionError:  # measured above; a last line of defence
        raise OtlpError(f"the body {too_deep_reason()}") from None
    if not isinstance(document, dict):
        raise OtlpError(
            f"an OTLP JSON trace export is an object with `resourceSpans`, "
            f"not a {type(document).__name__}"
        )
    _hex_ids_to_base64(document)
    request = ExportTraceServiceRequest()
    try:
        # Unknown fields are ignored, as the OTLP specification asks of receivers.
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpError(f"the body is not an OTLP JSON trace export: {exc}") from None
    except RecursionError:
        raise OtlpError(f"the body {too_deep_reason()}") from None
    return request


_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_ID_FIELDS = (
    ("traceId", "trace_id"),
    ("spanId", "span_id"),
    ("parentSpanId", "parent_span_id"),
)


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """Rewrite OTLP JSON's hex ids to the base64 that the protobuf JSON mapping parses.

    OTLP JSON departs from the generic mapping here: trace and span ids are hex strings.
    Anything of the wrong shape is left as it is, for ParseDict to name.
    """
    for r, resource_spans in enumerate(_items(document, "resourceSpans", "resource_spans")):
        for s, scope_spans in enumerate(_items(resource_spans, "scopeSpans", "scope_spans")):
            for n, span in enumerate(_items(scope_spans, "spans")):
                where = f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]"
                _rewrite_ids(span, where)
                for k, link in enumerate(_items(span, "links")):
                    _rewrite_ids(link, f"{where}.links[{k}]")


def _items(parent: object, *names: str) -> list[dict[str, Any]]:
    if not isinstance(parent, dict):
        return []
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            return [item for item in value if isinstance(item, dict)]
    return []


def _rewrite_ids(obj: dict[str, Any], where: str) -> None:
    for names in _ID_FIELDS:
        for name in names:
            value = obj.get(name)
            if not isinstance(value, str):
                continue
            if not _HEX.fullmatch(value):
                raise OtlpError(
                    f"{where}.{name}: {_quote(value)} is not an even number of hex digits "
                    "(OTLP JSON encodes ids as hex, not base64)"
                )
            obj[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _quote(value: str) -> str:
    text = repr(value)
    if len(text) > MAX_QUOTED:
        text = text[: MAX_QUOTED - 3] + "..."
    return f"str {text}"
