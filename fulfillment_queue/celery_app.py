"""The fulfillment queue's Celery app (broker: Redis at REDIS_URL).

    celery -A fulfillment_queue.celery_app worker -Q fulfillment \
        --concurrency 4 --prefetch-multiplier 1 --pool threads
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fulfillment_queue.settings")

app = Celery("fulfillment_queue", include=["fulfillment_queue.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
