"""The fulfillment queue's Celery app (broker: Redis at REDIS_URL).

    celery -A fulfillment_queue.celery_app worker -Q fulfillment \
        --prefetch-multiplier 1 --pool threads

Its threads come from the settings (CELERY_WORKER_CONCURRENCY: the slots at the
warehouse, FULFILLMENT_CONCURRENCY, and FULFILLMENT_STANDBY more; slots.py).

Traced as `fulfillment-worker`: a task continues the trace of the message that
brought it (the relay's publish of the accepted order), and its call to the
warehouse and the events it sends back are in that trace too.
"""

from __future__ import annotations

import os

from celery import Celery

from common.celery_heartbeat import heartbeat_file_register
from common.fault_kills import kill_watch_on_worker_ready
from common.tracing.celery import instrument_celery_worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fulfillment_queue.settings")

app = Celery("fulfillment_queue", include=["fulfillment_queue.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
instrument_celery_worker("fulfillment-worker")
heartbeat_file_register(app=app)
# Under docker compose (FAULTS_PROCESS): `faults kill` answered by the worker itself.
kill_watch_on_worker_ready()
