"""Settings of the orders service (ASGI: DRF + channels, port 8002, database `orders`).

The flash sale's order path: it takes orders against an allocation held in Redis,
writes them with an outbox event in one transaction, and a relay hands them to the
fulfillment queue. It never imports the shop's or the queue's code.
"""

from __future__ import annotations

from common import events
from common.celery_settings import celery_settings
from common.env import env_bool, env_float, env_int, env_str, service_database
from common.redis_client import redis_timeouts
from common.settings import *  # noqa: F403
from common.settings import BASE_DIR, DEBUG, REDIS_URL, SHOP_PORT
from common.stack_secrets import secrets_required

ROOT_URLCONF = "orders_api.urls"
ASGI_APPLICATION = "orders_api.asgi.application"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "common",
    "orders_api",
]

# Every middleware here runs async as well as sync: under ASGI a request then crosses
# into a thread once (for the view), not once per sync-only middleware. The trace id
# goes first, so every answer names its trace (the tracing middleware, inserted at
# start-up, sits before it).
MIDDLEWARE = [
    "common.middleware.TraceIdMiddleware",
    # Above sessions and CSRF: it sees the cookies they set (common/cache_control.py).
    "common.cache_control.CacheControlMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it turns a Redis fault raised by a view into a 503.
    "orders_api.web.errors.RedisFaultMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "orders_api.web.context_processors.orders_context",
            ],
        },
    },
]

# HTTP requests run on a fixed pool of threads and websocket consumers on asgiref's,
# so connections come from a pool per process (psycopg_pool) rather than one per thread.
ORDERS_DB_POOL_SIZE = env_int("ORDERS_DB_POOL_SIZE", 16, minimum=0)
DATABASES = {
    "default": service_database("orders", conn_max_age=0 if ORDERS_DB_POOL_SIZE else 60)
}
if ORDERS_DB_POOL_SIZE:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": 2,
        "max_size": ORDERS_DB_POOL_SIZE,
        "timeout": 10,
    }
# Threads per process running HTTP requests (asgi.py); more requests wait their turn
# on the event loop (never refused). Bounds threads and connections under a flood.
ORDERS_MAX_CONCURRENT_REQUESTS = env_int(
    "ORDERS_MAX_CONCURRENT_REQUESTS", 16, minimum=1
)

# Everything this service serves statically lives under /static/orders/, the one
# static prefix the edge sends here (the docs page's Swagger UI included). asgi.py
# serves it from the apps' static folders (staticfiles finders; no collectstatic).
STATIC_URL = "/static/orders/"
STATIC_ROOT = None

# The buyer's session only remembers which orders it placed: a signed cookie, no
# table. Its own cookie name, so it never clobbers the shop's session behind the edge.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
SESSION_COOKIE_NAME = "orders_sessionid"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "orders_api.web.errors.csrf_failure"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "common.errors.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "lee.fishing orders API",
    "DESCRIPTION": "The flash-sale order path: accept fast, fulfil through a queue.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# Channels: websockets for the order status page and the sale board. Pub/sub groups
# survive a Redis FLUSHALL (subscriptions are not keys); the prefix keeps two stacks
# on one Redis server apart. The stack's Redis timeouts (common/redis_client.py): a
# push to a hanging Redis fails in about a second (pushes are best effort).
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, **redis_timeouts()}],
            "prefix": env_str("ORDERS_CHANNELS_PREFIX", "orders"),
        },
    }
}

# --- the order path ------------------------------------------------------------------
SHOP_URL = env_str("SHOP_URL", f"http://127.0.0.1:{SHOP_PORT}")
# It signs the buyers' sessions (the orders they may see): no default for either.
SECRET_KEY, INTERNAL_API_TOKEN = secrets_required(
    "DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN", debug=DEBUG
)
SHOP_TIMEOUT_SECONDS = env_float("ORDERS_SHOP_TIMEOUT", 5.0)
# The products this service can run a sale of: page slug → shop SKU.
SALE_PRODUCTS = {"muskie-casting-rod": "ROD-MUSKIE"}
MAX_QUANTITY_PER_ORDER = env_int("SHOP_MAX_QUANTITY_PER_LINE", 10, minimum=1)
# Where the sale's minisite is built (orders_api/sales/site.py): the directory of the
# edge's static origin `muskie-site`, which reads the same variable. A relative path
# is under the checkout.
SALE_SITE_DIR = BASE_DIR / env_str("SALE_SITE_DIR", ".data/sites/muskie-casting-rod")
# Redis keys of this service (counters, rate limits) start with this.
ORDERS_REDIS_PREFIX = env_str("ORDERS_REDIS_PREFIX", "orders")
# Per client (IP): at most ORDERS_RATE_LIMIT order attempts per window; then 429.
ORDERS_RATE_LIMIT = env_int("ORDERS_RATE_LIMIT", 20, minimum=1)
ORDERS_RATE_WINDOW_SECONDS = env_int("ORDERS_RATE_WINDOW_SECONDS", 10, minimum=1)
# Behind the edge every request comes from the edge: trust its X-Forwarded-For.
ORDERS_TRUST_X_FORWARDED_FOR = env_bool("ORDERS_TRUST_X_FORWARDED_FOR", False)
# POST /api/orders/ refusals (sold out, rate limited, a stored refusal replayed)
# answered on the event loop, ahead of Django (orders_api/web/fast_lane.py).
ORDERS_FAST_LANE = env_bool("ORDERS_FAST_LANE", True)
# ... and, with it, the plain accept whole (its transaction on an async connection of
# the lane's own, orders_api/web/fast_accept.py): no thread, no Django handler.
ORDERS_LOOP_ACCEPT = env_bool("ORDERS_LOOP_ACCEPT", True)
# An order's status for the holder of its token (`GET /api/orders/<id>/?token=`) and
# each order websocket's first state, read on the event loop (web/status_lane.py).
ORDERS_LOOP_READS = env_bool("ORDERS_LOOP_READS", True)
# The loop's own PostgreSQL connections per orders process, for both: an accept holds
# one for its transaction (with a Redis read inside it); more wait their turn on the
# loop.
ORDERS_LOOP_ACCEPT_CONNECTIONS = env_int("ORDERS_LOOP_ACCEPT_CONNECTIONS", 8, minimum=1)
# How many of them each process opens at its start (the rest as a sale needs them).
ORDERS_LOOP_WARM_CONNECTIONS = env_int("ORDERS_LOOP_WARM_CONNECTIONS", 4, minimum=0)
ORDERS_IDEMPOTENCY_TTL_SECONDS = env_int(
    "ORDERS_IDEMPOTENCY_TTL_SECONDS", 24 * 3600, minimum=1
)
# A claimed key is its claimant's for this long; then a retry may take it over (the
# claimant died: SIGKILL, a worker timeout, a deploy). A claimant that was only slow
# finds its claim gone when it commits, and its order is rolled back.
ORDERS_IDEMPOTENCY_LEASE_SECONDS = env_int(
    "ORDERS_IDEMPOTENCY_LEASE_SECONDS", 30, minimum=1
)
# The relay: batch size, how long it sleeps when idle, when a stuck order (no word
# from the queue) is published again, how often expired idempotency keys go.
ORDERS_RELAY_BATCH = env_int("ORDERS_RELAY_BATCH", 200, minimum=1)
# Accepted orders a fulfillment message may carry (first publish, sampled or not):
# fewer messages, publishes and tasks per order on the whole path. 1: one each.
ORDERS_RELAY_BUNDLE = env_int("ORDERS_RELAY_BUNDLE", 5, minimum=1)
ORDERS_RELAY_IDLE_SECONDS = env_float("ORDERS_RELAY_IDLE_SECONDS", 0.5)
# Woken by a committed order, the relay waits this long for more before its pass:
# in a rush one pass (one transaction, one push round) carries many orders.
ORDERS_RELAY_GATHER_SECONDS = env_float("ORDERS_RELAY_GATHER_SECONDS", 0.02)
# 60 s, the broker's visibility timeout: a message a killed worker took before Kombu
# recorded it as unacknowledged is gone from Redis, and only this finds it again,
# within a sale's drain (the warehouse's order_ref makes a second delivery harmless).
ORDERS_REDELIVER_SECONDS = env_int("ORDERS_REDELIVER_SECONDS", 60, minimum=1)
# Redelivery never takes the fulfillment queue above this many messages: a backlog
# then cannot grow by its own redeliveries (outbox/relay.py, orders_redeliver).
ORDERS_REDELIVER_QUEUE_BOUND = env_int("ORDERS_REDELIVER_QUEUE_BOUND", 1000, minimum=1)
# How often the relay compares each open sale's Redis counter with the database and
# rebuilds it when units went missing (a request killed between admission and commit).
ORDERS_RECONCILE_SECONDS = env_float("ORDERS_RECONCILE_SECONDS", 15.0)
ORDERS_SWEEP_SECONDS = env_int("ORDERS_SWEEP_SECONDS", 600, minimum=1)
# Touched on every relay pass when set (compose's healthcheck reads its age).
ORDERS_RELAY_HEARTBEAT_FILE = env_str("ORDERS_RELAY_HEARTBEAT_FILE", "")

# Queues (Celery on Redis). Tasks are sent by name: no service imports another.
FULFILLMENT_QUEUE = env_str("FULFILLMENT_QUEUE", events.FULFILLMENT_QUEUE)
ORDERS_EVENTS_QUEUE = env_str("ORDERS_EVENTS_QUEUE", events.ORDERS_EVENTS_QUEUE)
globals().update(
    celery_settings(
        broker_url=REDIS_URL, env_prefix="ORDERS", default_queue=ORDERS_EVENTS_QUEUE
    )
)
