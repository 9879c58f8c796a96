"""The local span store's writer: OTLP/JSON lines, one file per process.

Without a collector (`make demo`, the tests) spans go to `TRACES_DIR` as the
OpenTelemetry file format: each line is one `ExportTraceServiceRequest` in the
OTLP/JSON shape the specification asks for (ids as hex, enums as integers, 64-bit
integers as strings, default values left out), so the files are what the
Collector's `otlpjsonfile` receiver reads too. The line is written straight from the
SDK's spans, field for field what the official OTLP encoder followed by protobuf's
JSON mapping gives (tests/observability/test_otlp_files.py holds the two side by
side): going through protobuf cost three times as much CPU per span, in every
process of the stack, the largest part of what tracing cost. The line is written as
text, each span piece by piece, an attribute seen before as the text it gave then
(a document built of dicts and encoded cost twice as much again).

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
# A string as the encoder writes it (ASCII, escaped), quotes included.
_STRING = json.encoder.encode_basestring_ascii
_KIND_TEXTS = {kind: str(number) for kind, number in _KINDS.items()}


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


def _events(span_events: Sequence[Event]) -> list[dict[str, Any]]:
    events = []
    for event in span_events:
        encoded: dict[str, Any] = {}
        if event.timestamp:
            encoded["timeUnixNano"] = str(event.timestamp)
        if event.name:
            encoded["name"] = event.name
        _put_attributes(encoded, event.attributes, event.dropped_attributes)
        events.append(encoded)
    return events


def _links(span_links: Sequence[Link]) -> list[dict[str, Any]]:
    links = []
    for link in span_links:
        encoded: dict[str, Any] = {
            "traceId": format(link.context.trace_id, "032x"),
            "spanId": format(link.context.span_id, "016x"),
        }
        _put_attributes(encoded, link.attributes, link.dropped_attributes)
        encoded["flags"] = _flags(link.context)
        links.append(encoded)
    return links


# The JSON text of an attribute (`{"key":...,"value":{...}}`) by key, type and value:
# a process sends the same few attributes again and again (`db.system`, the peer,
# the same statements, routes and methods), so most of a span's attributes are a
# dict lookup rather than a document built and encoded. Bounded: emptied when full
# (ids and other one-off values come and go); a long text is not kept.
_ATTRIBUTE_TEXTS: dict[tuple[str, type, Any], str] = {}
_ATTRIBUTE_TEXTS_MAX = 4096
_ATTRIBUTE_TEXT_KEPT_CHARS = 2048
_SCALARS = (str, int, float, bool)


def _attribute_text(key: str, value: Any) -> str:
    kind = type(value)
    if kind not in _SCALARS:
        return _ENCODER.encode({"key": key, "value": _value(value)})
    memo = (key, kind, value)
    text = _ATTRIBUTE_TEXTS.get(memo)
    if text is None:
        text = _ENCODER.encode({"key": key, "value": _value(value)})
        if len(text) <= _ATTRIBUTE_TEXT_KEPT_CHARS:
            if len(_ATTRIBUTE_TEXTS) >= _ATTRIBUTE_TEXTS_MAX:
                _ATTRIBUTE_TEXTS.clear()
            _ATTRIBUTE_TEXTS[memo] = text
    return text


def _span_text(span: ReadableSpan) -> str:
    """One span as OTLP/JSON text, written piece by piece rather than built as a
    document and encoded (its attributes mostly repeat: _attribute_text)."""
    context = span.get_span_context()
    assert context is not None
    parts = [
        '{"traceId":"',
        format(context.trace_id, "032x"),
        '","spanId":"',
        format(context.span_id, "016x"),
        '"',
    ]
    if context.trace_state:
        state = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
        parts += [',"traceState":', _STRING(state)]
    if span.parent is not None:
        parts += [',"parentSpanId":"', format(span.parent.span_id, "016x"), '"']
    if span.name:
        parts += [',"name":', _STRING(span.name)]
    parts += [',"kind":', _KIND_TEXTS[span.kind]]
    if span.start_time:
        parts += [',"startTimeUnixNano":"', str(span.start_time), '"']
    if span.end_time:
        parts += [',"endTimeUnixNano":"', str(span.end_time), '"']
    attributes, span_events, span_links = span_parts(span)
    plain = attributes_plain(attributes)
    if plain:
        texts = [_attribute_text(key, value) for key, value in plain.items()]
        parts += [',"attributes":[', ",".join(texts), "]"]
    extra: dict[str, Any] = {}
    if span.dropped_attributes:
        extra["droppedAttributesCount"] = span.dropped_attributes
    if span_events:
        extra["events"] = _events(span_events)
    if span.dropped_events:
        extra["droppedEventsCount"] = span.dropped_events
    if span_links:
        extra["links"] = _links(span_links)
    if span.dropped_links:
        extra["droppedLinksCount"] = span.dropped_links
    if extra:  # rare: written as a document, its braces dropped
        parts += [",", _ENCODER.encode(extra)[1:-1]]
    status = span.status
    if status.description or status.status_code.value:
        doc: dict[str, Any] = {}
        if status.description:
            doc["message"] = status.description
        if status.status_code.value:
            doc["code"] = status.status_code.value
        parts += [',"status":', _ENCODER.encode(doc)]
    else:
        parts.append(',"status":{}')
    parts += [',"flags":', str(_flags(span.parent)), "}"]
    return "".join(parts)


def _scope_text(scope: Any) -> str:
    scope_doc: dict[str, Any] = {}
    if scope is not None:
        if scope.name:
            scope_doc["name"] = scope.name
        if scope.version:
            scope_doc["version"] = scope.version
        _put_attributes(scope_doc, scope.attributes)
    text = '{"scope":' + _ENCODER.encode(scope_doc)
    if scope is not None and scope.schema_url:
        text += ',"schemaUrl":' + _STRING(scope.schema_url)
    return text


def otlp_json_line(spans: Sequence[ReadableSpan]) -> bytes:
    """One OTLP/JSON `ExportTraceServiceRequest` line for `spans`."""
    # Grouped by the resource object, not its value: Resource.__hash__ serialises
    # every attribute to JSON, per span (a tenth of a Celery worker's CPU). A process
    # has one resource, so equal resources are the same object here.
    by_resource: dict[int, tuple[Any, dict[Any, list[str]]]] = {}
    for span in spans:
        group = by_resource.get(id(span.resource))
        if group is None:
            group = by_resource[id(span.resource)] = (span.resource, {})
        scopes = group[1]
        scopes.setdefault(span.instrumentation_scope or None, []).append(
            _span_text(span)
        )
    if not by_resource:
        return b"{}\n"
    resource_texts = []
    for resource, scopes in by_resource.values():
        scope_texts = [
            _scope_text(scope) + ',"spans":[' + ",".join(texts) + "]}"
            for scope, texts in scopes.items()
        ]
        resource_doc: dict[str, Any] = {}
        _put_attributes(resource_doc, resource.attributes)
        text = '{"resource":' + _ENCODER.encode(resource_doc)
        text += ',"scopeSpans":[' + ",".join(scope_texts) + "]"
        if resource.schema_url:
            text += ',"schemaUrl":' + _STRING(resource.schema_url)
        resource_texts.append(text + "}")
    line = '{"resourceSpans":[' + ",".join(resource_texts) + "]}\n"
    return line.encode()


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
