"""Tracing for the Django services: their views' server spans, their WSGI app.

Django is imported inside the functions only: importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.tracing.core import (
    WSGIApp,
    instrument_clients,
    tracing_enabled,
    tracing_setup,
)

# Made by hand (common/tracing/server_span.py), not by the official instrumentation.
SERVER_SPAN_MIDDLEWARE = "common.tracing.server_span.ServerSpanMiddleware"


def instrument_django() -> None:
    """Server spans for Django views: our middleware first in MIDDLEWARE (with
    tracing on). Call before get_wsgi/asgi_application()."""
    if not tracing_enabled():
        return
    from django.conf import settings

    middleware = list(settings.MIDDLEWARE)
    if SERVER_SPAN_MIDDLEWARE not in middleware:
        settings.MIDDLEWARE = [SERVER_SPAN_MIDDLEWARE, *middleware]


def traced_wsgi_application(service_name: str) -> WSGIApp:
    """Django's WSGI application, instrumented, for a service's wsgi.py.

    Patching happens here, at import, which is safe even in a gunicorn master that
    preloads the app: it starts no thread and opens no file or socket. The provider
    and exporter are set up at the first request of each worker instead: with
    `--preload` the master imports this module once and forks, and a batch thread or
    an exporter connection made before the fork would be shared or lost. Without
    `--preload` each worker imports this module itself; the first request is still
    the right place, and gunicorn needs no config hook that only it would call.
    """
    from django.core.wsgi import get_wsgi_application

    instrument_django()
    instrument_clients()
    django_app = get_wsgi_application()
    if not tracing_enabled():
        return django_app

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        tracing_setup(service_name)
        return django_app(environ, start_response)

    return application
