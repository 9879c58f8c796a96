"""The edge in the stack's traces, through common/tracing/.

Each proxied request is a server span (the ASGI instrumentation: it continues the
visitor's W3C `traceparent`, or starts a new trace when there is none or it is
malformed), and its call to the origin a client span under it (the aiohttp
instrumentation), whose context goes to the origin in `traceparent`: so the origin's
spans hang from the edge's, and the visitor's own trace context is not sent on.

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
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_http_instrumentation

from common.tracing.asgi import instrument_asgi_app
from common.tracing.core import (
    current_trace_id,
    instrument_aiohttp_client,
    span_annotate,
    tracing_enabled,
)
from edge_router.asgi_types import App, Receive, Scope, Send
from edge_router.headers import TRACE_CONTEXT, trace_from

ADMIN_PREFIX = "/_edge/"
NO_SKIP: frozenset[bytes] = frozenset()


class EdgeTracing:
    """Tracing on or off, decided once per process from the environment."""

    def __init__(self) -> None:
        self.enabled = tracing_enabled()

    def wrap(self, app: App) -> App:
        """The edge's ASGI app with server spans, and aiohttp with client spans.

        Call before the worker builds its aiohttp session (lifespan start), since
        the instrumentation adds itself to sessions as they are built.
        """
        if not self.enabled:
            return app
        instrument_aiohttp_client()
        traced: App = instrument_asgi_app(app, "edge", event_spans=False)

        async def edge(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and scope["path"].startswith(ADMIN_PREFIX):
                await app(scope, receive, send)
            else:
                await traced(scope, receive, send)

        return edge

    def trace_id(self, scope_headers: list[tuple[bytes, bytes]]) -> str:
        """The trace this request is in: the server span's, or with tracing off
        the visitor's (when well formed); "" when there is none."""
        if self.enabled:
            return current_trace_id()
        for name, value in scope_headers:
            if name == b"traceparent":
                return trace_from(value)
        return ""

    def span_id(self) -> str:
        """The edge's server span for the access log; "" with tracing off."""
        if not self.enabled:
            return ""
        context = trace.get_current_span().get_span_context()
        return format(context.span_id, "016x") if context.is_valid else ""

    def skip(self, trace_id: str) -> frozenset[bytes]:
        """Request headers not to send on: the visitor's trace context when the
        instrumentation sends the edge's own instead."""
        return TRACE_CONTEXT if self.enabled and trace_id else NO_SKIP

    def annotate(
        self, attributes: Mapping[str, str], canary_percent: int | None
    ) -> None:
        """Say on the server span what served the request."""
        if not self.enabled:
            return
        span_annotate(attributes)
        if canary_percent is not None:
            span_annotate({"edge.canary_percent": canary_percent})

    def without_client_span(self, trace_id: str) -> bool:
        """True for a request that has no server span (an excluded URL, such as
        static files): its client span would be a trace of its own, about nothing."""
        return self.enabled and not trace_id

    @staticmethod
    def suppressed() -> contextlib.AbstractContextManager[Any]:
        return suppress_http_instrumentation()
