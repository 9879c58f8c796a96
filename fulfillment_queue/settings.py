"""Settings of the fulfillment queue's worker (Celery, database `fulfillment_queue`).

The worker takes `orders.order-accepted` events from the `fulfillment` queue and calls
the warehouse over HTTP at a bounded concurrency, so the warehouse is never flooded.
"""

from __future__ import annotations

from common.env import env_float, env_int, env_str, service_database
from common.settings import *  # noqa: F403
from common.settings import REDIS_URL

ROOT_URLCONF = "fulfillment_queue.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "common",
    "fulfillment_queue",
]
MIDDLEWARE: list[str] = []
TEMPLATES: list[dict[str, object]] = []

DATABASES = {"default": service_database("fulfillment_queue")}

# Tasks running at once (the worker's --concurrency); must stay below the warehouse's
# capacity (WAREHOUSE_CAPACITY, 8) so the warehouse never answers 503 to the queue.
FULFILLMENT_CONCURRENCY = env_int("FULFILLMENT_CONCURRENCY", 4, minimum=1)
# Optional Celery rate limit per worker, e.g. "50/s"; empty: none.
FULFILLMENT_RATE_LIMIT = env_str("FULFILLMENT_RATE_LIMIT", "")
FULFILLMENT_WAREHOUSE_TIMEOUT = env_float("FULFILLMENT_WAREHOUSE_TIMEOUT", 10.0)
# Retries when the warehouse is busy or down: exponential backoff with a ceiling,
# then the order goes to the dead-letter table.
FULFILLMENT_MAX_RETRIES = env_int("FULFILLMENT_MAX_RETRIES", 8, minimum=0)
FULFILLMENT_BACKOFF_SECONDS = env_float("FULFILLMENT_BACKOFF_SECONDS", 1.0)
FULFILLMENT_BACKOFF_MAX_SECONDS = env_float("FULFILLMENT_BACKOFF_MAX_SECONDS", 30.0)

FULFILLMENT_QUEUE = env_str("FULFILLMENT_QUEUE", "fulfillment")
ORDERS_EVENTS_QUEUE = env_str("ORDERS_EVENTS_QUEUE", "orders-events")

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Above any task's run time and retry countdown: a message a live worker holds is
# never handed to a second worker; one a killed worker held comes back after it.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("FULFILLMENT_VISIBILITY_TIMEOUT", 3600, minimum=1),
    # How often a worker looks for messages a dead worker held (older than the
    # visibility timeout) and puts them back on the queue.
    "unacked_restore_interval": env_int("FULFILLMENT_RESTORE_INTERVAL", 10, minimum=1),
    "unacked_restore_throttle": 1,
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = FULFILLMENT_QUEUE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ANNOTATIONS = (
    {"fulfillment.handle_order_accepted": {"rate_limit": FULFILLMENT_RATE_LIMIT}}
    if FULFILLMENT_RATE_LIMIT
    else {}
)
