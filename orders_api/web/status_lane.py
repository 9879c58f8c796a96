"""The ASGI status lane: `GET /api/orders/<id>/?token=...` answered on the event loop.

A flash sale's buyers who follow their order by polling ask this once a second
each, for as long as the queue takes. Through Django each poll held a thread of
the pool for one primary-key read. Here, ahead of Django, the read runs on the
loop (web/order_reads.py) and the answer is the view's own: its serializer and
renderer (ordering/apis.py OrderDetailApi), the headers DRF and the middleware
give it (web/lane_http.py), tested side by side.

The lane steps aside, and Django answers as before, for anything else: another
path or method, no token (a session cookie, or none: Django's 401 says how), a
host Django would refuse, HTTPS redirects, an order that is not found or not the
token's, a database that fails. `ORDERS_LOOP_READS=false` turns it off.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import parse_qs

import psycopg
from django.conf import settings
from rest_framework.renderers import JSONRenderer

from common.errors import ApplicationError
from common.tracing.core import ASGIApp
from orders_api.ordering.apis import OrderDetailApi
from orders_api.web import lane_http
from orders_api.web.order_reads import order_visible_on_loop

DETAIL = re.compile(r"/api/orders/([0-9a-fA-F-]{36})/")
# The view's route (orders_api/urls.py) and what DRF says it allows.
ROUTE = "api/orders/<uuid:order_id>/"
ALLOW = "GET, HEAD, OPTIONS"


class OrderStatusLane:
    """ASGI middleware in front of Django (see the module's docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._renderer = JSONRenderer()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        poll = _plain_case(scope)
        if poll is None:
            await self.app(scope, receive, send)
            return
        order_id, token = poll
        started_ns = time.time_ns()
        headers = lane_http.request_headers(scope)
        if (
            settings.SESSION_COOKIE_NAME in headers.get("cookie", "")
            or settings.SECURE_SSL_REDIRECT
            or not lane_http.host_allowed(headers)
        ):
            await self.app(scope, receive, send)
            return
        with lane_http.lane_span(
            scope, headers, route=ROUTE, started_ns=started_ns
        ) as span:
            try:
                order = await order_visible_on_loop(
                    order_id=order_id,
                    token=token,
                    session_orders=(),
                )
            except (ApplicationError, psycopg.Error):
                if span.is_recording():
                    span.set_attribute("orders.lane", "to-django")
                answered = False
            else:
                content = self._renderer.render(
                    OrderDetailApi.OutputSerializer(order).data
                )
                await lane_http.traced_answer(send, span, ALLOW, 200, content, {})
                answered = True
        if not answered:
            await self.app(scope, receive, send)


def _plain_case(scope: dict[str, Any]) -> tuple[str, str] | None:
    """(order id, access token) of a plain status poll, or None: Django answers."""
    if (
        scope["type"] != "http"
        or scope["method"] != "GET"
        or not settings.ORDERS_LOOP_READS
    ):
        return None
    match = DETAIL.fullmatch(scope["path"])
    if match is None:
        return None
    tokens = parse_qs(scope.get("query_string", b"").decode("latin1")).get("token")
    return (match.group(1), tokens[0]) if tokens else None
