"""The services' spans made by hand (common.tracing.core.span_start) skip the SDK's
Span only where the services' sampler would record them for sure, and what they
store is what the SDK's span stored, field for field.

- `ServicesSampler.records` against the sampler's own `should_sample`, case by case:
  every parent (none, remote or local, sampled or not, Celery's producer), every
  kind, inside a message's publish or not, for the default root sampler and a ratio.
- A real process (tracing_setup, the local span store): the same work done once with
  plain spans and once with the SDK's, the stored lines compared.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import textwrap
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import Decision, TraceIdRatioBased
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from common.tracing.sampling import (
    CELERY_SCOPE,
    NoBareClientRoots,
    ServicesSampler,
    message_publishing,
)
from observability.store import FileSpanStore
from tests.support.processes import ROOT
from tests.support.tracing import traced_env

TRACE_IDS = [1, 2**64 + 7, 2**127 + 3, 2**128 - 1]


def _parents() -> dict[str, trace.Span]:
    """Every kind of parent a span made by hand can have."""
    provider = TracerProvider()
    local = provider.get_tracer("test").start_span("local")
    celery = provider.get_tracer(CELERY_SCOPE).start_span(
        "apply_async/t", kind=SpanKind.PRODUCER
    )

    def remote(sampled: bool) -> trace.Span:
        flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
        return trace.NonRecordingSpan(
            SpanContext(5, 6, is_remote=True, trace_flags=flags)
        )

    unsampled_local = trace.NonRecordingSpan(
        SpanContext(5, 7, is_remote=False, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    )
    return {
        "none": trace.INVALID_SPAN,
        "remote sampled": remote(True),
        "remote not sampled": remote(False),
        "local sampled": local,
        "local not sampled": unsampled_local,
        "celery producer": celery,
    }


@pytest.mark.parametrize("ratio", [None, 0.5], ids=["default roots", "ratio roots"])
def test_records_says_yes_only_where_the_sampler_records_every_trace(
    ratio: float | None,
) -> None:
    root = (
        NoBareClientRoots()
        if ratio is None
        else NoBareClientRoots(TraceIdRatioBased(ratio))
    )
    sampler = ServicesSampler(root)
    checked = {True: 0, False: 0}
    for (label, parent), kind, publishing in itertools.product(
        _parents().items(), list(SpanKind), [False, True]
    ):
        context = trace.set_span_in_context(parent)
        if publishing:
            with message_publishing():
                context = trace.set_span_in_context(parent, otel_context.get_current())
        decisions = {
            sampler.should_sample(context, trace_id, "s", kind).decision
            for trace_id in TRACE_IDS
        }
        says = sampler.records(kind, context, parent)
        case = f"{label}, {kind.name}, publishing={publishing}"
        if says:
            # then the sampler records it, whatever the trace id
            assert decisions == {Decision.RECORD_AND_SAMPLE}, case
        elif ratio is None:
            # with the default roots, a "no" is never a span the sampler records
            assert Decision.RECORD_AND_SAMPLE not in decisions, case
        checked[says] += 1
    # both answers were given
    assert checked[True]
    assert checked[False]


def test_a_ratio_root_is_left_to_the_sampler_and_a_default_root_is_not() -> None:
    parent = trace.INVALID_SPAN
    context = trace.set_span_in_context(parent)
    kept = ServicesSampler(NoBareClientRoots())
    drawn = ServicesSampler(NoBareClientRoots(TraceIdRatioBased(1.0)))
    assert kept.records(SpanKind.SERVER, context, parent)
    assert not kept.records(SpanKind.CLIENT, context, parent)
    assert not drawn.records(SpanKind.SERVER, context, parent)


WORK = """
import json, sys
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode
import common.tracing.core as core
from common.tracing.core import (
    message_publishing, span_from_carrier, span_in_trace, span_start, tracing_setup,
)
from common.tracing.plain_spans import PlainSpan, span_current

tracing_setup("outbox-relay")
if sys.argv[1] == "sdk":
    core.plain_span = lambda *args, **kwargs: None
kinds = []
carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
with span_from_carrier("outbox publish", carrier, attributes={"n": 1}) as publish:
    kinds.append(type(publish).__name__)
    with span_in_trace("orders.push", kind=SpanKind.PRODUCER, attributes={"g": "o.1"}):
        kinds.append(type(trace.get_current_span()).__name__)
    with message_publishing():
        with span_in_trace("PUBLISH", kind=SpanKind.CLIENT) as call:
            kinds.append(type(call).__name__)
    try:
        with span_in_trace("fails") as failing:
            failing.set_attributes({"headers": ["a", "b"]})
            raise ValueError("no stock")
    except ValueError:
        pass
root = span_start("lane", "POST api/orders/", kind=SpanKind.SERVER, start_time=10**18)
kinds.append(type(root).__name__)
with span_current(root):
    root.set_attribute("http.status_code", 202)
    root.set_status(Status(StatusCode.OK))
unsampled = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"}
with span_from_carrier("not sampled", unsampled) as skipped:
    kinds.append(type(skipped).__name__)
trace.get_tracer_provider().force_flush()
print(json.dumps(kinds))
"""


def _stored(tmp_path: Any, how: str) -> tuple[list[str], list[dict[str, Any]]]:
    directory = tmp_path / how
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(WORK), how],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **traced_env(directory)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [
        json.loads(line)
        for path in sorted(directory.glob("*.jsonl"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    spans = [
        span
        for line in lines
        for resource in line["resourceSpans"]
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    ]
    return json.loads(result.stdout), sorted(spans, key=lambda span: span["name"])


def _blank(spans: list[dict[str, Any]]) -> str:
    """Ids, times and traceback frames blanked: what is left must be equal."""
    text = json.dumps(spans, sort_keys=True)
    text = re.sub(r'"\d{19}"', '"T"', text)
    text = re.sub(r"[0-9a-f]{32}|[0-9a-f]{16}", "X", text)
    return re.sub(r'"Traceback(?:[^"\\]|\\.)*"', '"TB"', text)


def test_plain_spans_store_what_the_sdks_spans_stored(tmp_path: Any) -> None:
    # when the same work is done with plain spans, then with the SDK's
    plain_kinds, plain = _stored(tmp_path, "plain")
    sdk_kinds, by_sdk = _stored(tmp_path, "sdk")
    # then the spans the sampler records for sure were plain: the publish, the push
    # and the root server span; the client call inside a publish and the span of an
    # unsampled trace were the SDK's, and not recorded
    assert plain_kinds == [
        "PlainSpan",
        "PlainSpan",
        "NonRecordingSpan",
        "PlainSpan",
        "NonRecordingSpan",
    ]
    assert "PlainSpan" not in sdk_kinds
    # and the store holds the same spans, field for field
    assert [span["name"] for span in plain] == [
        "POST api/orders/",
        "fails",
        "orders.push",
        "outbox publish",
    ]
    assert _blank(plain) == _blank(by_sdk)
    # under the stored parent, at the time given, with the exception recorded
    publish = plain[3]
    assert publish["traceId"] == "0af7651916cd43dd8448eb211c80319c"
    assert publish["parentSpanId"] == "b7ad6b7169203331"
    assert plain[0]["startTimeUnixNano"] == str(10**18)
    assert plain[1]["events"][0]["name"] == "exception"
    # and the trace readers read them
    stored = FileSpanStore(tmp_path / "plain").spans()
    assert {span.name for span in stored} == {span["name"] for span in plain}
