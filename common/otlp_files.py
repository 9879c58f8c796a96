"""The local span store's writer: OTLP/JSON lines, one file per process.

Without a collector (`make demo`, the tests) spans go to `TRACES_DIR` as the
OpenTelemetry file format: each line is one `ExportTraceServiceRequest` encoded
by the official OTLP encoder and printed with protobuf's JSON mapping, then put in
the OTLP/JSON shape the specification asks for (ids as hex, enums as integers), so
the files are what the Collector's `otlpjsonfile` receiver reads too.

Several processes write at once (gunicorn workers, Celery children): each writes
its own file, named with its pid, opened for appending, one `write` per batch. A
reader can meet a half-written last line; it skips a line without its newline.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


def _hex_ids(record: dict[str, Any]) -> None:
    # protobuf's JSON mapping writes bytes as base64; OTLP/JSON wants hex ids.
    for key in _ID_FIELDS:
        if record.get(key):
            record[key] = base64.b64decode(record[key]).hex()


def otlp_json_line(spans: Sequence[ReadableSpan]) -> bytes:
    """One OTLP/JSON `ExportTraceServiceRequest` line for `spans`."""
    document = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                _hex_ids(span)
                for link in span.get("links", []):
                    _hex_ids(link)
    return (json.dumps(document, separators=(",", ":")) + "\n").encode()


class JsonLinesSpanExporter(SpanExporter):
    """Appends each exported batch as one line to `<dir>/<service>-<pid>.jsonl`."""

    def __init__(self, directory: Path, *, service_name: str) -> None:
        self.directory = directory
        self.service_name = service_name
        self._lock = threading.Lock()
        self._pid = 0
        self._file: Any = None

    @property
    def path(self) -> Path:
        safe = "".join(
            c if c.isalnum() or c in "-_" else "_" for c in self.service_name
        )
        return self.directory / f"{safe}-{os.getpid()}.jsonl"

    def _open(self) -> Any:
        # A forked child must not share its parent's file: a new pid, a new file.
        if self._file is None or self._pid != os.getpid():
            self.directory.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
            self._pid = os.getpid()
        return self._file

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if not spans:
            return SpanExportResult.SUCCESS
        data = otlp_json_line(spans)
        try:
            with self._lock:
                handle = self._open()
                view = memoryview(data)
                while view:
                    written = handle.write(view)
                    view = view[written:]
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None and self._pid == os.getpid():
                self._file.close()
            self._file = None
