"""The local span store's writer: OTLP/JSON lines, one file per process.

Without a collector (`make demo`, the tests) spans go to `TRACES_DIR` as the
OpenTelemetry file format: each line is one `ExportTraceServiceRequest` in the
OTLP/JSON shape the specification asks for (ids as hex, enums as integers, 64-bit
integers as strings, default values left out), so the files are what the
Collector's `otlpjsonfile` receiver reads too. The line is written straight from the
SDK's spans, field for field what the official OTLP encoder followed by protobuf's
JSON mapping gives (tests/observability/test_otlp_files.py holds the two side by
side): going through protobuf cost three times as much CPU per span, in every
process of the stack, the largest part of what tracing cost.

Several processes write at once (gunicorn workers, Celery children): each writes
its own file, named with its pid, opened for appending, one `write` per batch. A
reader can meet a half-written last line; it skips a line without its newline.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanContext, SpanKind

# OTLP's SpanKind numbers (the SDK's enum starts at INTERNAL = 0).
_KINDS = {
    SpanKind.INTERNAL: 1,
    SpanKind.SERVER: 2,
    SpanKind.CLIENT: 3,
    SpanKind.PRODUCER: 4,
    SpanKind.CONSUMER: 5,
}
# SpanFlags: the context's is-remote bit is known, and (second bit) it is remote.
_HAS_IS_REMOTE = 0x100
_IS_REMOTE = 0x200
# Compact, and without the circular-reference check: the document is built here,
# of fresh dicts and lists only.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def _value(value: Any) -> dict[str, Any]:
    if type(value) is str:  # nearly every attribute: first, without isinstance
        return {"stringValue": value}
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Sequence):
        values = [_value(item) for item in value]
        return {"arrayValue": {"values": values} if values else {}}
    if isinstance(value, Mapping):
        pairs = _attributes(value)
        return {"kvlistValue": {"values": pairs} if pairs else {}}
    raise TypeError(f"an attribute cannot be a {type(value).__name__}")


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    return [
        {"key": key, "value": _value(value)}
        for key, value in attributes_plain(attributes).items()
    ]


def attributes_plain(attributes: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The dict behind the SDK's BoundedAttributes: iterating those takes their lock
    and copies their keys, and reads each value through `__getitem__` (a third of
    the encoding's time). A finished span's attributes no longer change."""
    if not attributes:
        return {}
    inner = getattr(attributes, "_dict", None)
    return inner if isinstance(inner, dict) else attributes


def span_parts(
    span: ReadableSpan,
) -> tuple[Mapping[str, Any] | None, Sequence[Event], Sequence[Link]]:
    """A span's attributes, events and links without the SDK's copies: its
    `attributes` property wraps them in a MappingProxyType and `events` / `links`
    copy a locked BoundedList into a tuple, for every span, most of which have no
    events or links. A class that reads them otherwise is asked through its
    properties."""
    kind = type(span)
    if (
        kind.attributes is ReadableSpan.attributes
        and kind.events is ReadableSpan.events
        and kind.links is ReadableSpan.links
    ):
        return span._attributes, span._events, span._links
    return span.attributes, span.events, span.links


def _put_attributes(
    target: dict[str, Any], attributes: Mapping[str, Any] | None, dropped: int = 0
) -> None:
    if attributes:
        target["attributes"] = _attributes(attributes)
    if dropped:
        target["droppedAttributesCount"] = dropped


def _flags(context: SpanContext | None) -> int:
    if context is not None and context.is_remote:
        return _HAS_IS_REMOTE | _IS_REMOTE
    return _HAS_IS_REMOTE


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    assert context is not None
    out: dict[str, Any] = {
        "traceId": format(context.trace_id, "032x"),
        "spanId": format(context.span_id, "016x"),
    }
    if context.trace_state:
        out["traceState"] = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    if span.parent is not None:
        out["parentSpanId"] = format(span.parent.span_id, "016x")
    if span.name:
        out["name"] = span.name
    out["kind"] = _KINDS[span.kind]
    if span.start_time:
        out["startTimeUnixNano"] = str(span.start_time)
    if span.end_time:
        out["endTimeUnixNano"] = str(span.end_time)
    attributes, span_events, span_links = span_parts(span)
    _put_attributes(out, attributes, span.dropped_attributes)
    if span_events:
        events = []
        for event in span_events:
            encoded: dict[str, Any] = {}
            if event.timestamp:
                encoded["timeUnixNano"] = str(event.timestamp)
            if event.name:
                encoded["name"] = event.name
            _put_attributes(encoded, event.attributes, event.dropped_attributes)
            events.append(encoded)
        out["events"] = events
    if span.dropped_events:
        out["droppedEventsCount"] = span.dropped_events
    if span_links:
        links = []
        for link in span_links:
            encoded = {
                "traceId": format(link.context.trace_id, "032x"),
                "spanId": format(link.context.span_id, "016x"),
            }
            _put_attributes(encoded, link.attributes, link.dropped_attributes)
            encoded["flags"] = _flags(link.context)
            links.append(encoded)
        out["links"] = links
    if span.dropped_links:
        out["droppedLinksCount"] = span.dropped_links
    status: dict[str, Any] = {}
    if span.status.description:
        status["message"] = span.status.description
    if span.status.status_code.value:
        status["code"] = span.status.status_code.value
    out["status"] = status
    out["flags"] = _flags(span.parent)
    return out


def otlp_json_line(spans: Sequence[ReadableSpan]) -> bytes:
    """One OTLP/JSON `ExportTraceServiceRequest` line for `spans`."""
    # Grouped by the resource object, not its value: Resource.__hash__ serialises
    # every attribute to JSON, per span (a tenth of a Celery worker's CPU). A process
    # has one resource, so equal resources are the same object here.
    by_resource: dict[int, tuple[Any, dict[Any, list[dict[str, Any]]]]] = {}
    for span in spans:
        group = by_resource.get(id(span.resource))
        if group is None:
            group = by_resource[id(span.resource)] = (span.resource, {})
        scopes = group[1]
        scopes.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = []
    for resource, scopes in by_resource.values():
        scope_spans = []
        for scope, encoded in scopes.items():
            scope_doc: dict[str, Any] = {}
            if scope is not None:
                if scope.name:
                    scope_doc["name"] = scope.name
                if scope.version:
                    scope_doc["version"] = scope.version
                _put_attributes(scope_doc, scope.attributes)
            entry: dict[str, Any] = {"scope": scope_doc, "spans": encoded}
            if scope is not None and scope.schema_url:
                entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        resource_doc: dict[str, Any] = {}
        _put_attributes(resource_doc, resource.attributes)
        item: dict[str, Any] = {"resource": resource_doc, "scopeSpans": scope_spans}
        if resource.schema_url:
            item["schemaUrl"] = resource.schema_url
        resource_spans.append(item)
    document = {"resourceSpans": resource_spans} if resource_spans else {}
    return (_ENCODER.encode(document) + "\n").encode()


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
