"""Settings of the fulfillment queue's worker (Celery, database `fulfillment_queue`).

The worker takes `orders.order-accepted` events from the `fulfillment` queue and calls
the warehouse over HTTP at a bounded concurrency, so the warehouse is never flooded.
"""

from __future__ import annotations

from common import events
from common.celery_settings import celery_settings
from common.env import env_float, env_int, env_str, service_database
from common.settings import *  # noqa: F403
from common.settings import DEBUG, ORDERS_PORT, REDIS_URL
from common.stack_secrets import secrets_required

ROOT_URLCONF = "fulfillment_queue.urls"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "common",
    "fulfillment_queue",
]
MIDDLEWARE: list[str] = []
TEMPLATES: list[dict[str, object]] = []

DATABASES = {"default": service_database("fulfillment_queue")}
# The warehouse takes no write without the internal token (the shop's and the
# warehouse's INTERNAL_API_TOKEN): the worker packs nothing without it.
SECRET_KEY, INTERNAL_API_TOKEN = secrets_required(
    "DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN", debug=DEBUG
)

# Calls to the warehouse at once, the worker's slots (slots.py); must stay below the
# warehouse's capacity (WAREHOUSE_CAPACITY, 8) so the warehouse never answers 503 to
# the queue. With the warehouse's handling time (WAREHOUSE_HANDLING_MS, 200) it is the
# rate a backlog drains at: 3 / 0.2 s = 15 orders a second.
FULFILLMENT_CONCURRENCY = env_int("FULFILLMENT_CONCURRENCY", 3, minimum=1)
# Threads beyond the slots: each holds its next message, parsed and reported started,
# ready for the slot a call frees, while the thread that freed it does its order's
# bookkeeping (reports, ack, next message) off the slot's time. 0: a slot waits for
# that bookkeeping between two calls (about 27 ms a call in a sale: 12 orders a second
# of 15). More than the slots buys nothing: a thread's message would only wait longer
# for a slot, within the broker's visibility timeout.
FULFILLMENT_STANDBY = env_int("FULFILLMENT_STANDBY", 2, minimum=0)
# Optional Celery rate limit per worker, e.g. "50/s"; empty: none.
FULFILLMENT_RATE_LIMIT = env_str("FULFILLMENT_RATE_LIMIT", "")
FULFILLMENT_WAREHOUSE_TIMEOUT = env_float("FULFILLMENT_WAREHOUSE_TIMEOUT", 10.0)
# A batch's "fulfilled" reports to the orders service are held up to about this long
# to travel together (services.orders_fulfill); 0: each goes as its order is packed.
FULFILLMENT_REPORT_SECONDS = env_float("FULFILLMENT_REPORT_SECONDS", 0.25)
# Retries when the warehouse is busy or down: exponential backoff with a ceiling,
# then the order goes to the dead-letter table.
FULFILLMENT_MAX_RETRIES = env_int("FULFILLMENT_MAX_RETRIES", 8, minimum=0)
FULFILLMENT_BACKOFF_SECONDS = env_float("FULFILLMENT_BACKOFF_SECONDS", 1.0)
FULFILLMENT_BACKOFF_MAX_SECONDS = env_float("FULFILLMENT_BACKOFF_MAX_SECONDS", 30.0)

# The orders service's internal API: a dead letter's replay asks it to take the
# order's units back first (`fulfillment dlq replay`), over HTTP, never by import.
ORDERS_URL = env_str("ORDERS_URL", f"http://127.0.0.1:{ORDERS_PORT}")
FULFILLMENT_ORDERS_TIMEOUT = env_float("FULFILLMENT_ORDERS_TIMEOUT", 10.0)

FULFILLMENT_QUEUE = env_str("FULFILLMENT_QUEUE", events.FULFILLMENT_QUEUE)
ORDERS_EVENTS_QUEUE = env_str("ORDERS_EVENTS_QUEUE", events.ORDERS_EVENTS_QUEUE)

globals().update(
    celery_settings(
        broker_url=REDIS_URL,
        env_prefix="FULFILLMENT",
        default_queue=FULFILLMENT_QUEUE,
        annotations=(
            {events.HANDLE_ORDER_ACCEPTED: {"rate_limit": FULFILLMENT_RATE_LIMIT}}
            if FULFILLMENT_RATE_LIMIT
            else None
        ),
    )
)
# The worker's threads (no --concurrency on its command line): every slot's, and the
# standby's. Each takes one message at a time (prefetch 1).
CELERY_WORKER_CONCURRENCY = FULFILLMENT_CONCURRENCY + FULFILLMENT_STANDBY
# A batch of orders (the relay's bundle) takes no new order after this long: the
# rest go back to the queue, so a message is done within the broker's visibility
# timeout (FULFILLMENT_VISIBILITY_TIMEOUT, 60 s: 15 s by default) even when its last
# order takes the warehouse timeout.
FULFILLMENT_BATCH_SECONDS = env_float(
    "FULFILLMENT_BATCH_SECONDS",
    globals()["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"] / 4,
)
