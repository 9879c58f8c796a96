"""An OTLP/HTTP trace receiver that keeps every span's name and attributes.

POST /v1/traces   an ExportTraceServiceRequest (protobuf), answered 200
GET  /spans       what it kept, as JSON: [{"service", "name", "attributes"}]
GET  /status      200 (the healthcheck)

It listens on 127.0.0.1:$OTLP_SINK_PORT (4318).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SPANS: list[dict[str, Any]] = []
LOCK = threading.Lock()


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    return getattr(any_value, kind) if kind else None


def _spans(request: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    spans = []
    for resource_spans in request.resource_spans:
        resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = {a.key: _value(a.value) for a in span.attributes}
                spans.append(
                    {
                        "service": resource.get("service.name"),
                        "name": span.name,
                        "attributes": attributes,
                    }
                )
    return spans


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with LOCK:
            SPANS.extend(_spans(request))
        self._send(
            200,
            ExportTraceServiceResponse().SerializeToString(),
            "application/x-protobuf",
        )

    def do_GET(self) -> None:
        if self.path == "/spans":
            with LOCK:
                body = json.dumps(SPANS).encode()
            self._send(200, body, "application/json")
        else:
            self._send(200, b"{}", "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


if __name__ == "__main__":
    # PID 1 of its container: the kernel drops a signal PID 1 has no handler for, so
    # without this `docker-compose down` waits its 10 s for SIGTERM, then kills.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    port = int(os.environ.get("OTLP_SINK_PORT", "4318"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
