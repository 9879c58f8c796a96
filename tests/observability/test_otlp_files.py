"""The span store's writer gives, field for field, what the official OTLP encoder and
protobuf's JSON mapping give (the OTLP/JSON file format), for every kind of span.

The spans are real SDK spans, made by a real tracer provider; the reference is the
OpenTelemetry exporter's own `encode_spans`, printed as OTLP/JSON asks (hex ids).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from common.otlp_files import otlp_json_line
from observability.store import spans_from_otlp


def _reference(spans: list[ReadableSpan]) -> dict[str, Any]:
    document = MessageToDict(encode_spans(spans), use_integers_for_enums=True)
    for resource_spans in document.get("resourceSpans", []):
        for scope_spans in resource_spans.get("scopeSpans", []):
            for span in scope_spans.get("spans", []):
                for holder in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if holder.get(key):
                            holder[key] = base64.b64decode(holder[key]).hex()
    return document


def _spans() -> list[ReadableSpan]:
    kept = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": "orders-api", "service.instance.id": "i-1"},
            schema_url="https://opentelemetry.io/schemas/1.21.0",
        ),
        span_limits=SpanLimits(max_span_attributes=6, max_events=1, max_links=1),
    )
    provider.add_span_processor(SimpleSpanProcessor(kept))
    plain = provider.get_tracer("plain")
    versioned = provider.get_tracer(
        "versioned", "1.2.3", schema_url="https://example.com/s", attributes={"a": 1}
    )
    remote = SpanContext(
        0x4BF92F3577B34DA6A3CE929D0E0E4736,
        0x00F067AA0BA902B7,
        is_remote=True,
        trace_flags=TraceFlags(1),
        trace_state=TraceState([("vendor", "x"), ("other", "y")]),
    )
    linked = SpanContext(0xABC, 0xDEF, is_remote=False)
    parent = trace.set_span_in_context(NonRecordingSpan(remote))
    with plain.start_as_current_span(
        "POST /api/orders/", context=parent, kind=SpanKind.SERVER
    ) as server:
        server.set_attributes(
            {
                "http.status_code": 202,
                "ok": True,
                "no": False,
                "zero": 0,
                "ratio": 0.5,
                "names": ("a", "b"),
                "over the limit": "dropped",
            }
        )
        server.add_event("first", {"n": 1})
        server.add_event("dropped")
        for kind in (SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER):
            with versioned.start_as_current_span(kind.name.lower(), kind=kind):
                pass
        with plain.start_as_current_span(
            "linked", links=[Link(remote), Link(linked, {"why": "replay"})]
        ) as span:
            span.set_status(Status(StatusCode.ERROR, "the warehouse said no"))
        with plain.start_as_current_span("ok") as span:
            span.set_status(Status(StatusCode.OK))
            span.set_attribute("empty", [])
    return list(kept.get_finished_spans())


def test_the_line_is_what_the_official_encoder_gives_for_every_kind_of_span():
    spans = _spans()
    line = otlp_json_line(spans)
    # one line, ending in a newline
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    # the same document as encode_spans + protobuf's JSON mapping, field for field
    assert json.loads(line) == _reference(spans)
    # and the reader gets every span back with its relations
    read = {s.name: s for s in spans_from_otlp(json.loads(line))}
    assert read["POST /api/orders/"].parent_id == "00f067aa0ba902b7"
    assert read["POST /api/orders/"].trace_state == "vendor=x,other=y"
    assert read["linked"].links == ((format(0xABC, "032x"), format(0xDEF, "016x")),)
    assert read["linked"].status == "error"
    assert read["consumer"].kind == "consumer"
    assert read["POST /api/orders/"].attributes["names"] == ["a", "b"]


def test_nothing_to_write_is_an_empty_request():
    assert json.loads(otlp_json_line([])) == _reference([]) == {}


def test_an_attribute_written_before_is_written_again_as_its_own_type():
    # given spans whose attribute `x` is 1, True, "1", 1.0 in turn (equal as dict
    # keys, not as OTLP values), each value twice, in two batches
    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("plain")
    for value in (1, True, "1", 1.0, 1, True, "1", 1.0):
        with tracer.start_as_current_span("span", attributes={"x": value}):
            pass
    spans = list(kept.get_finished_spans())
    # when the writer writes them, a batch at a time
    lines = [otlp_json_line(spans[:4]), otlp_json_line(spans[4:])]
    # then each line is what the official encoder gives: every value its own type
    for line, batch in zip(lines, (spans[:4], spans[4:]), strict=True):
        assert json.loads(line) == _reference(batch)
    values = [
        s["attributes"][0]["value"]
        for s in json.loads(lines[1])["resourceSpans"][0]["scopeSpans"][0]["spans"]
    ]
    assert values == [
        {"intValue": "1"},
        {"boolValue": True},
        {"stringValue": "1"},
        {"doubleValue": 1.0},
    ]
