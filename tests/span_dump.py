"""Print every span an OpenTelemetry client exports: names, kinds, parents, attributes.

A debugging aid for the client tests: run it as a stand-in OTLP/HTTP collector and point a
client at it, to see exactly which attribute names and values the client sends.

    python tests/span_dump.py --port 4318 [--json spans.jsonl]
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:4318/v1/traces python my_agent.py

Prompt and completion content is shortened, never needed to judge what gets billed. The
same decoding is a library call, `describe(body, content_type, encoding)`, which the client
tests use to show what arrived when an assertion fails.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from payoff.sources.otlp import parse_export

MAX_VALUE = 120
"""Characters of a string value kept (message content is long and beside the point)."""
SPAN_KINDS = ["UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER"]
STATUS_CODES = ["UNSET", "OK", "ERROR"]


def value_of(value: AnyValue) -> object:
    """An attribute value as a plain Python value, long strings shortened."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return {kv.key: value_of(kv.value) for kv in value.kvlist_value.values}
    found = getattr(value, which)
    if isinstance(found, str) and len(found) > MAX_VALUE:
        return found[:MAX_VALUE] + f"... ({len(found)} chars)"
    if isinstance(found, bytes):
        return f"<{len(found)} bytes>"
    return found


def describe_request(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """One plain dict per span: ids, name, kind, parent, scope, status, resource, attributes."""
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: value_of(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            scope = f"{scope_spans.scope.name} {scope_spans.scope.version}".strip()
            for span in scope_spans.spans:
                spans.append({
                    "trace": span.trace_id.hex(),
                    "span": span.span_id.hex(),
                    "parent": span.parent_span_id.hex() or None,
                    "name": span.name,
                    "kind": SPAN_KINDS[span.kind] if span.kind < len(SPAN_KINDS) else span.kind,
                    "scope": scope,
                    "status": STATUS_CODES[span.status.code],
                    "start_ns": span.start_time_unix_nano,
                    "end_ns": span.end_time_unix_nano,
                    "resource": resource,
                    "attributes": {kv.key: value_of(kv.value) for kv in span.attributes},
                })  # fmt: skip
    return spans


def decompress(body: bytes, encoding: str | None) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


def describe(body: bytes, content_type: str, encoding: str | None = None) -> list[dict[str, Any]]:
    """The spans of one OTLP/HTTP export body, as `describe_request` gives them."""
    return describe_request(parse_export(decompress(body, encoding), content_type))


def print_spans(spans: list[dict[str, Any]], out: TextIO = sys.stdout) -> None:
    """A readable listing: one block per span, its attributes sorted by name."""
    for span in spans:
        parent = span["parent"] or "-"
        print(
            f"{span['name']!r} kind={span['kind']} status={span['status']} "
            f"trace={span['trace'][:8]} span={span['span']} parent={parent} "
            f"scope={span['scope']!r}",
            file=out,
        )
        for key, value in sorted(span["attributes"].items()):
            print(f"    {key} = {value!r}", file=out)
    out.flush()


class _Collector(BaseHTTPRequestHandler):
    json_out: TextIO | None = None

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        chunks = []  # the Node exporter sends chunked bodies
        while size := int(self.rfile.readline().split(b";")[0], 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        self.rfile.readline()
        return b"".join(chunks)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = self._body()
        content_type = self.headers.get("Content-Type", "application/x-protobuf")
        spans = describe(body, content_type, self.headers.get("Content-Encoding"))
        print(f"-- export of {len(spans)} spans to {self.path}", flush=True)
        print_spans(spans)
        if self.json_out is not None:
            for span in spans:
                self.json_out.write(json.dumps(span) + "\n")
            self.json_out.flush()
        payload = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4318)
    parser.add_argument("--json", help="also append every span as a JSON line to this file")
    arguments = parser.parse_args()
    if arguments.json:
        _Collector.json_out = open(arguments.json, "a")  # noqa: SIM115 (open for the run)
    print(f"collecting OTLP/HTTP spans on http://127.0.0.1:{arguments.port}/v1/traces")
    ThreadingHTTPServer(("127.0.0.1", arguments.port), _Collector).serve_forever()


if __name__ == "__main__":
    main()
