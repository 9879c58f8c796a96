"""Tracing for any ASGI app (the edge, channels websockets): no Django import."""

from __future__ import annotations

from typing import Any

from common.tracing.core import (
    ASGIApp,
    excluded_urls,
    tracing_enabled,
    tracing_setup,
)


def instrument_asgi_app(
    app: ASGIApp,
    service_name: str,
    *,
    edge_mode: str | None = None,
    event_spans: bool = False,
) -> ASGIApp:
    """Server spans around any ASGI app (the edge, channels websockets).

    Without the span the instrumentation would make for every ASGI receive and
    send (a proxy streaming a download would make one per chunk, a websocket one
    per message): `event_spans=True` asks for them, to debug a protocol.
    """
    if not tracing_enabled():
        return app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    traced = OpenTelemetryMiddleware(
        app,
        excluded_urls=excluded_urls("ASGI"),
        exclude_spans=None if event_spans else ["receive", "send"],
    )

    async def application(scope: Any, receive: Any, send: Any) -> None:
        tracing_setup(service_name, edge_mode=edge_mode)
        await traced(scope, receive, send)

    return application
