"""Tracing for the Django services: their views' server spans, their WSGI app.

Django is imported inside the functions only: importing this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.tracing.core import (
    WSGIApp,
    excluded_urls,
    instrument_clients,
    instrument_once,
    tracing_enabled,
    tracing_setup,
)


def instrument_django() -> None:
    """Server spans for Django views. Call before get_wsgi/asgi_application()."""
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    instrument_once(DjangoInstrumentor(), excluded_urls=excluded_urls("DJANGO"))


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
