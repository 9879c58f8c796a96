"""The orders service's own small Celery app.

It consumes `orders-events` (results coming back from the fulfillment queue) and is
the relay's publisher. Configuration comes from orders_api.settings (`CELERY_*`).
A worker of this app is traced as `orders-worker`: each event it applies continues
the fulfillment worker's trace through the message (the relay, which only publishes,
names itself `outbox-relay` first).

    celery -A orders_api.celery_app worker -Q orders-events
"""

from __future__ import annotations

import os

from celery import Celery

from common.celery_heartbeat import heartbeat_file_register
from common.fault_kills import kill_watch_on_worker_ready
from common.tracing import instrument_celery_worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orders_api.settings")

app = Celery("orders_api", include=["orders_api.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
instrument_celery_worker("orders-worker")
heartbeat_file_register(app=app)
# Under docker compose (FAULTS_PROCESS): `faults kill` answered by the worker itself.
kill_watch_on_worker_ready()
