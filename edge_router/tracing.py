"""The edge in the stack's traces, through common/tracing/: sampling is decided here.

The edge decides, once per request, whether the request is traced: each behaviour of
the route table has a `trace` ratio (the table's [defaults] one, or
TRACES_SAMPLE_RATIO, for the rest; purchases 1). Everything behind the edge follows
that decision through the `traceparent` the edge sends (parent-based sampling in
every service, the relay and the workers).

- **Traced**: the request runs inside a server span and its call to the origin is a
  client span under it, whose context goes to the origin in `traceparent` with the
  sampled flag set. Both are made here (`traced`, `client_span`), with the few
  attributes the trace readers use: the ASGI instrumentation cost a traced request
  ten times an untraced one's CPU (a twentieth of the requests doubled the edge's
  cost), and the aiohttp instrumentation hooks every request of the session. The
  spans themselves are not the SDK's either but plain records handed to its span
  processors when they end (common/tracing/plain_spans.py): a third of the CPU.
- **Not traced**: no instrumentation runs and no span object is made; the edge writes
  a `traceparent` with the sampled flag clear itself (a random span id), so that the
  services behind make no recording spans either and still share one trace id for
  their logs and `X-Trace-Id`. That header is all the request costs.

A visitor's own `traceparent` decides nothing: its sampled flag can neither force a
trace (a flood of traced requests) nor hide a purchase. A well-formed one keeps its
trace id (the visitor can find its request by it); a malformed one is replaced by a
new trace. The draw is a random number, not the trace id, so a visitor cannot pick a
trace id that gets sampled. The visitor's `tracestate` is never sent on.

The server span says what served the request: `edge.mode` (the profile, `legacy` or
`strangler`; in canary mode also `edge.canary_percent`), `edge.route` and
`edge.origin`. The mode is not a resource attribute: a process's resource is fixed
for its life, and the edge's mode changes while it runs.

The edge's own endpoints (`/_edge/`: health checks every few seconds, metrics
scrapes, the admin) are not traced. With tracing off (`OTEL_SDK_DISABLED=true`),
nothing is wrapped and the visitor's trace context passes to the origin untouched.
"""

from __future__ import annotations

import contextlib
import random
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Literal

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.http import parse_excluded_urls
from opentelemetry.util.types import AttributeValue

from common.tracing.core import (
    current_trace_id,
    excluded_urls,
    span_annotate,
    tracing_enabled,
    tracing_setup,
)
from common.tracing.plain_spans import SpanRecorder, span_current
from edge_router.asgi_types import App, Message, Receive, Scope, Send
from edge_router.headers import TRACE_CONTEXT, trace_from

NO_SKIP: frozenset[bytes] = frozenset()
# W3C trace context, version 00 as the SDK reads it: lower-case hex, ids not all zero.
_TRACEPARENT = re.compile(rb"^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN, _ONE_SPAN = "0" * 16, "0" * 15 + "1"
# The instrumentation scope of the edge's own spans.
TRACER = "edge_router.tracing"
_PROPAGATOR = TraceContextTextMapPropagator()
Inside = Callable[[Receive, Send], Awaitable[None]]


def _url(scope: Scope) -> str:
    """The request's URL as OTEL_PYTHON_EXCLUDED_URLS patterns are matched against."""
    server = scope.get("server")
    host = f"{server[0]}:{server[1]}" if server else ""
    return f"{scope.get('scheme', 'http')}://{host}{scope['path']}"


def kept_trace_id(traceparent: bytes | None) -> str:
    """The trace id of a visitor's well-formed `traceparent`, else ""."""
    if traceparent:
        match = _TRACEPARENT.match(traceparent)
        if match and match.group(1) != _ZERO_TRACE:
            return match.group(1).decode("ascii")
    return ""


class EdgeTracing:
    """Tracing on or off, decided once per process from the environment; whether a
    request is traced, decided per request from its behaviour's ratio."""

    def __init__(self, draw: random.Random | None = None) -> None:
        self.enabled = tracing_enabled()
        # The visitor's trace context never goes on as it came when tracing is on:
        # the edge sends its own (traced or not).
        self.skip = TRACE_CONTEXT if self.enabled else NO_SKIP
        self._draw = draw or random.Random()
        self._excluded = parse_excluded_urls(excluded_urls("ASGI"))
        # The span recorder, once the first traced request has made it (False:
        # there is no SDK provider to record to).
        self._spans: SpanRecorder | Literal[False] | None = None

    def wrap(self, app: App) -> App:
        """`app` as it is: the edge itself decides which requests are traced."""
        return app

    def sampled(self, ratio: float) -> bool:
        """Whether to trace a request of a behaviour with this `trace` ratio."""
        if not self.enabled:
            return False
        return ratio >= 1.0 or (ratio > 0.0 and self._draw.random() < ratio)

    def visitor_trace_id(self, seen: Mapping[bytes, bytes]) -> str:
        """With tracing off: the trace the visitor says the request is in, or ""."""
        return "" if self.enabled else trace_from(seen.get(b"traceparent"))

    def untraced_parent(self, seen: Mapping[bytes, bytes]) -> tuple[str, str]:
        """(trace id, `traceparent` to send on) for a request not traced: the
        visitor's trace id when well formed, a new one otherwise; not sampled."""
        # One draw for both ids: half the CPU of two getrandbits and two formats.
        ids = self._draw.randbytes(24).hex()
        span_id = ids[32:] if ids[32:] != _ZERO_SPAN else _ONE_SPAN
        trace_id = kept_trace_id(seen.get(b"traceparent")) or ids[:32]
        return trace_id, f"00-{trace_id}-{span_id}-00"

    async def traced(
        self, scope: Scope, receive: Receive, send: Send, inside: Inside
    ) -> None:
        """Run `inside` in the request's server span (none for an excluded URL),
        with a `send` that notes the response's status on the span."""
        if self._excluded.url_disabled(_url(scope)):
            await inside(receive, send)
            return
        recorder = self._recorder()
        if recorder is None:
            await inside(receive, send)
            return
        # Only the visitor's traceparent: its tracestate is not ours to carry on.
        carrier = {}
        for name, value in scope["headers"]:
            if name == b"traceparent":
                carrier["traceparent"] = value.decode("latin-1")
        method = scope.get("method", "GET")
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.scheme": scope.get("scheme", "http"),
            "url.path": scope["path"],
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        if scope.get("client"):
            attributes["client.address"] = scope["client"][0]
        query = scope.get("query_string")
        if query:
            attributes["url.query"] = query.decode("latin-1")
        visitor = trace.get_current_span(_PROPAGATOR.extract(carrier))
        span = recorder.span(
            f"{method} {scope['path']}",
            SpanKind.SERVER,
            attributes,
            visitor.get_span_context(),
        )
        with span_current(span):

            async def noting(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status = message["status"]
                    span.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        span.set_status(Status(StatusCode.ERROR))
                await send(message)

            await inside(receive, noting)

    def _recorder(self) -> SpanRecorder | None:
        """The process's span recorder, made at the first traced request (after
        tracing_setup, in the worker that makes the spans); None without an SDK."""
        if self._spans is None:
            tracing_setup("edge")
            self._spans = SpanRecorder.for_provider(TRACER) or False
        return self._spans or None

    def annotate(
        self, attributes: Mapping[str, str], canary_percent: int | None
    ) -> None:
        """Say on the server span what served the request."""
        span_annotate(attributes)
        if canary_percent is not None:
            span_annotate({"edge.canary_percent": canary_percent})

    @staticmethod
    def trace_id() -> str:
        """The trace of the server span this code runs in ("" for an excluded URL)."""
        return current_trace_id()

    @staticmethod
    def span_id() -> str:
        """The server span this code runs in, for the access log ("" if none)."""
        context = trace.get_current_span().get_span_context()
        return format(context.span_id, "016x") if context.is_valid else ""

    @contextlib.contextmanager
    def client_span(
        self,
        method: str,
        url: str,
        host: str,
        port: int,
        headers: list[tuple[str, str]],
    ) -> Iterator[Span]:
        """The call to the origin, as a client span under the server span; its
        context is added to `headers` as the `traceparent` the origin continues.
        Say the answer with `client_answered`."""
        server = trace.get_current_span().get_span_context()
        recorder = self._recorder()
        if recorder is None or not server.is_valid:
            # No server span: the call starts no trace (the sampler's rule).
            yield trace.INVALID_SPAN
            return
        attributes: dict[str, AttributeValue] = {
            "http.request.method": method,
            "url.full": url,
            "server.address": host,
            "server.port": port,
        }
        span = recorder.span(method, SpanKind.CLIENT, attributes, server)
        with span_current(span):
            context = span.get_span_context()
            headers.append(
                ("traceparent", f"00-{context.trace_id:032x}-{context.span_id:016x}-01")
            )
            yield span

    @staticmethod
    def client_answered(span: Span, status: int) -> None:
        """The origin's status on the client span (a 5xx is an error)."""
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
