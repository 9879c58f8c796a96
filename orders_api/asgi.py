"""ASGI entry point of the orders service: HTTP → Django, websockets → consumers.

gunicorn orders_api.asgi:application -k uvicorn_worker.UvicornWorker

Traced (common/tracing/) as `orders-api`: Django's views, psycopg, Redis and the
shop client through the Django instrumentation, websockets through the ASGI one.

The serving model: Django's WSGI handler on a fixed pool of threads inside this ASGI
app (`traced_django_asgi_application`), websockets native ASGI (channels) beside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, cast

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_api.settings")
# Django first: the consumers import models.
django.setup(set_prefix=False)

from a2wsgi import WSGIMiddleware  # noqa: E402
from a2wsgi.wsgi_typing import Environ, StartResponse  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from common.tracing.asgi import instrument_asgi_app  # noqa: E402
from common.tracing.celery import instrument_celery  # noqa: E402
from common.tracing.core import ASGIApp  # noqa: E402
from common.tracing.django import traced_wsgi_application  # noqa: E402
from orders_api.live import consumers  # noqa: E402
from orders_api.web.fast_lane import OrderFastLane  # noqa: E402
from orders_api.web.status_lane import OrderStatusLane  # noqa: E402

SERVICE_NAME = "orders-api"


def traced_django_asgi_application(service_name: str, *, threads: int = 16) -> ASGIApp:
    """Django for an ASGI server: its WSGI handler, instrumented, on `threads` threads.

    Django's own ASGIHandler runs a sync view behind sync middleware (Django's are)
    with a thread hop per middleware method, on a thread made afresh per request
    (asgiref's ThreadSensitiveContext). On the orders accept that was half the
    service's CPU (`python -m bench.orders`: 8.4 -> 4.0 ms per order). a2wsgi runs
    the whole request on one thread of a fixed pool instead; requests beyond
    `threads` wait on the event loop, which also bounds database connections.
    Websockets stay native ASGI (channels) beside it.
    """
    instrument_celery()
    django_app = traced_wsgi_application(service_name)

    def application(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        # A plain dict at run time, with keys a2wsgi's TypedDict does not list (its
        # own "asgi.scope", and RAW_URI).
        env = cast("dict[str, Any]", environ)
        # The request target as sent, as gunicorn gives it (a2wsgi does not). Without
        # it the WSGI instrumentation rebuilds the URL from PATH_INFO, which Django has
        # replaced by its decoded text, and a path outside latin-1 raises
        # (opentelemetry-python-contrib#3237).
        scope = env.get("asgi.scope")
        if scope is not None and "RAW_URI" not in env:
            target = scope.get("raw_path") or scope["path"].encode()
            if scope.get("query_string"):
                target += b"?" + scope["query_string"]
            env["RAW_URI"] = target.decode("latin1")
        return django_app(env, start_response)

    return WSGIMiddleware(application, workers=threads)


# Static files (/static/orders/) are answered ahead of Django's middleware, from the
# apps' static folders (no collectstatic step), and untraced; so are the refusals of
# POST /api/orders/ and its plain accepts (web/fast_lane.py), and the status polls
# with a token (web/status_lane.py), on the event loop. Every other HTTP request
# runs on one of ORDERS_MAX_CONCURRENT_REQUESTS threads; more wait on the event loop.
# The stubs want an ASGIHandler; Django's handler wraps any ASGI app (it only awaits
# it for what is not a static file).
django_application = ASGIStaticFilesHandler(
    OrderFastLane(  # type: ignore[arg-type]
        OrderStatusLane(
            traced_django_asgi_application(
                SERVICE_NAME, threads=settings.ORDERS_MAX_CONCURRENT_REQUESTS
            )
        )
    )
)

# Channels routes consumers through Django's path(), whose stubs take views only, and
# types URLRouter's routes as patterns no stubbed function returns: the stubs, not
# the routes, are wrong here.
websocket_urlpatterns = [
    path(
        "ws/orders/<uuid:order_id>/",
        consumers.OrderStatusConsumer.as_asgi(),  # type: ignore[arg-type]
    ),
    path(
        "ws/sale/<slug:slug>/",
        consumers.SaleBoardConsumer.as_asgi(),  # type: ignore[arg-type]
    ),
]

application = ProtocolTypeRouter(
    {
        "http": django_application,
        # The lanes open their connections as the server starts (web/fast_lane.py).
        "lifespan": django_application,
        # Browsers send Origin: only pages from our own hosts may open a socket.
        "websocket": instrument_asgi_app(
            AllowedHostsOriginValidator(
                SessionMiddlewareStack(
                    URLRouter(websocket_urlpatterns)  # type: ignore[arg-type]
                )
            ),
            SERVICE_NAME,
        ),
    }
)
