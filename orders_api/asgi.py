"""ASGI entry point of the orders service: HTTP → Django, websockets → consumers.

gunicorn orders_api.asgi:application -k uvicorn_worker.UvicornWorker

Traced (common/tracing.py) as `orders-api`: Django's views, psycopg, Redis and the
shop client through the Django instrumentation, websockets through the ASGI one.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_api.settings")
# Django first: the consumers import models.
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import SessionMiddlewareStack  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.urls import path  # noqa: E402

from common.tracing import (  # noqa: E402
    instrument_asgi_app,
    traced_django_asgi_application,
)
from orders_api.live import consumers  # noqa: E402

SERVICE_NAME = "orders-api"

# Static files (/static/orders/) are answered ahead of Django's middleware, from the
# apps' static folders (no collectstatic step), and untraced. Every other HTTP request
# runs on one of ORDERS_MAX_CONCURRENT_REQUESTS threads; more wait on the event loop.
django_application = ASGIStaticFilesHandler(
    traced_django_asgi_application(
        SERVICE_NAME, threads=settings.ORDERS_MAX_CONCURRENT_REQUESTS
    )
)

websocket_urlpatterns = [
    path("ws/orders/<uuid:order_id>/", consumers.OrderStatusConsumer.as_asgi()),
    path("ws/sale/<slug:slug>/", consumers.SaleBoardConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_application,
        # Browsers send Origin: only pages from our own hosts may open a socket.
        "websocket": instrument_asgi_app(
            AllowedHostsOriginValidator(
                SessionMiddlewareStack(URLRouter(websocket_urlpatterns))
            ),
            SERVICE_NAME,
        ),
    }
)
