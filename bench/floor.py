"""The floor of `bench.orders`: bare Django doing what an accept cannot do without.

    gunicorn bench.floor:application -k uvicorn_worker.UvicornWorker   (+ the
    orders service's environment: DJANGO_SETTINGS_MODULE=orders_api.settings)

The orders service's settings (its middleware, database pool, Redis timeouts) and its
serving model (Django's WSGI handler on a fixed pool of threads inside an ASGI app,
gunicorn + uvicorn workers), with one URL of its own: POST /floor/ takes one unit
with a Redis DECRBY and writes two rows in one transaction. Nothing of the orders
service's code runs: what an order costs above this is what its code costs.

Only the bench starts it; the orders service's URLconf never routes it
(tests/orders_api/test_bench_floor.py). Its two tables are made by the bench
(bench/floor_process.py TABLES_SQL).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_api.settings")
django.setup(set_prefix=False)

from a2wsgi import WSGIMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402

from common.redis_client import redis_from_url  # noqa: E402

FLOOR_KEY = "bench-floor:units"

_redis = redis_from_url(settings.REDIS_URL, decode_responses=True)


@csrf_exempt
def floor(request: HttpRequest) -> HttpResponse:
    """One unit from Redis, two inserts in one transaction, a small JSON answer."""
    if request.method != "POST":
        return JsonResponse({"ok": True})  # the bench's readiness probe
    _redis.decrby(FLOOR_KEY, 1)
    order_id, event_id = uuid.uuid4(), uuid.uuid4()
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO bench_floor_order (id, email, quantity) VALUES (%s, %s, %s)",
            [order_id, "bench@example.com", 1],
        )
        cursor.execute(
            "INSERT INTO bench_floor_event (id, order_id, data) VALUES (%s, %s, %s)",
            [event_id, order_id, '{"type": "floor"}'],
        )
    return JsonResponse({"id": str(order_id)}, status=202)


urlpatterns = [path("floor/", floor)]
settings.ROOT_URLCONF = __name__

application: Any = WSGIMiddleware(
    get_wsgi_application(),  # type: ignore[arg-type]
    workers=settings.ORDERS_MAX_CONCURRENT_REQUESTS,
)
