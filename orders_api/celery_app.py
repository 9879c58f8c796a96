"""The orders service's own small Celery app.

It consumes `orders-events` (results coming back from the fulfillment queue) and is
the relay's publisher. Configuration comes from orders_api.settings (`CELERY_*`).

    celery -A orders_api.celery_app worker -Q orders-events
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_api.settings")

app = Celery("orders_api", include=["orders_api.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
