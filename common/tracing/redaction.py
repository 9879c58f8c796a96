"""No secret in a span: what every exported span is cleaned of, in one place.

An order's access token rides in its links' query (`?token=`), on the status API,
the order page and the websocket; the internal token, session cookies and CSRF
cookies ride in headers, which an operator may ask the instrumentations to capture
(`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`). Each instrumentation
puts them in attributes of its own (`http.url`, `http.target`, `url.full`,
`url.query`, `http.request.header.*`, the span's name, an exception's message), so
the cleaning is done where every span passes, whichever instrumentation made it: the
exporter (`RedactingSpanExporter`, which tracing_setup puts around every exporter).
A span with nothing to clean is exported as it is; a string without `=`, or without
one of the secret names just before one, is not even searched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Status

from common.otlp_files import attributes_plain, span_parts

REDACTED = "REDACTED"
SECRET_PARAMS = (
    "token",
    "access_token",
    "key",
    "secret",
    "password",
    "sig",
    "signature",
)
# Header names as the semantic conventions spell them in attribute keys (lower case,
# `-` as `_`); both spellings are looked up.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy_authorization", "cookie", "set_cookie", "x_csrftoken"}
)
_HEADER_PREFIXES = ("http.request.header.", "http.response.header.")
# A secret parameter at the start of a query (`url.query`) or after ?, & or ;: its
# value, up to the next separator, a fragment, a space or a quote (an exception's
# message quotes its URL).
_SECRET_QUERY = re.compile(
    r"(^|[?&;])(" + "|".join(SECRET_PARAMS) + r")=[^&;#\s'\"]*", re.IGNORECASE
)


# What every match of _SECRET_QUERY holds, looked for first: a plain substring test
# is a tenth of the pattern's cost on a text that has none (an SQL statement, which
# nearly always has an `=`, in every database span).
_HINTS = tuple(f"{name}=" for name in SECRET_PARAMS)


def text_redact(text: str) -> str:
    """`text` with the value of every secret query parameter replaced by REDACTED."""
    if "=" not in text:
        return text
    lowered = text.lower()
    for hint in _HINTS:
        if hint in lowered:
            return _SECRET_QUERY.sub(rf"\1\2={REDACTED}", text)
    return text


def _secret_header(key: str) -> bool:
    if not key.startswith(_HEADER_PREFIXES):
        return False
    name = key.rpartition(".")[2].lower().replace("-", "_")
    return name in SECRET_HEADERS


def _value_redact(key: str, value: Any) -> Any:
    if _secret_header(key):
        return (
            (REDACTED,)
            if isinstance(value, Sequence) and not isinstance(value, str)
            else REDACTED
        )
    if isinstance(value, str):
        return text_redact(value)
    if isinstance(value, Sequence):
        items = [text_redact(item) if isinstance(item, str) else item for item in value]
        return value if items == list(value) else tuple(items)
    return value


def attributes_redact(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A cleaned copy of `attributes`, or None when there was nothing to clean."""
    cleaned: dict[str, Any] | None = None
    for key, value in attributes_plain(attributes).items():
        if type(value) is not str or "=" in value or key.startswith(_HEADER_PREFIXES):
            clean = _value_redact(key, value)
        else:  # most values: a string with no `=` and not a header's
            continue
        if clean is not value and clean != value:
            if cleaned is None:
                cleaned = dict(attributes or {})
            cleaned[key] = clean
    return cleaned


def _events_redact(events: Sequence[Event]) -> list[Event] | None:
    cleaned = [attributes_redact(event.attributes) for event in events]
    if not any(attributes is not None for attributes in cleaned):
        return None
    return [
        event
        if attributes is None
        else Event(event.name, attributes, timestamp=event.timestamp)
        for event, attributes in zip(events, cleaned, strict=True)
    ]


class _RedactedSpan(ReadableSpan):
    """A finished span's copy with some values replaced; its dropped counts kept."""

    def __init__(self, span: ReadableSpan, **changes: Any) -> None:
        super().__init__(
            name=changes.get("name", span.name),
            context=span.context,
            parent=span.parent,
            resource=span.resource,
            attributes=changes.get("attributes", span.attributes),
            events=changes.get("events", span.events),
            links=span.links,
            kind=span.kind,
            status=changes.get("status", span.status),
            start_time=span.start_time,
            end_time=span.end_time,
            instrumentation_scope=span.instrumentation_scope,
        )
        self._original = span

    @property
    def dropped_attributes(self) -> int:
        return self._original.dropped_attributes

    @property
    def dropped_events(self) -> int:
        return self._original.dropped_events

    @property
    def dropped_links(self) -> int:
        return self._original.dropped_links


def span_redact(span: ReadableSpan) -> ReadableSpan:
    """`span` itself when it holds no secret, else a copy without them."""
    changes: dict[str, Any] = {}
    name = text_redact(span.name)
    if name != span.name:
        changes["name"] = name
    span_attributes, span_events, _ = span_parts(span)
    attributes = attributes_redact(span_attributes)
    if attributes is not None:
        changes["attributes"] = attributes
    events = _events_redact(span_events) if span_events else None
    if events is not None:
        changes["events"] = events
    description = span.status.description
    if description and text_redact(description) != description:
        changes["status"] = Status(span.status.status_code, text_redact(description))
    return _RedactedSpan(span, **changes) if changes else span


class RedactingSpanExporter(SpanExporter):
    """Exports through `exporter` the spans cleaned by span_redact."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([span_redact(span) for span in spans])

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.exporter.force_flush(timeout_millis)

    def shutdown(self) -> None:
        self.exporter.shutdown()
