"""Settings of the warehouse (WSGI, gunicorn, port 8003, database `fulfillment`).

A JSON API between services: no sessions, no CSRF, no admin, no templates. Every
write (and the listing) takes the internal bearer token instead (middleware.py).
"""

from __future__ import annotations

from common.env import env_int, service_database
from common.settings import *  # noqa: F403
from common.settings import DEBUG
from common.stack_secrets import secrets_required

ROOT_URLCONF = "warehouse.urls"
WSGI_APPLICATION = "warehouse.wsgi.application"

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "common",
    "warehouse",
]

# CommonMiddleware validates the Host header against ALLOWED_HOSTS; then no write
# without the internal token, whatever its route.
MIDDLEWARE = [
    "common.middleware.TraceIdMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.common.CommonMiddleware",
    "warehouse.middleware.WritesNeedTokenMiddleware",
]
# An API answers 404 for /fulfilments, it does not redirect a POST to /fulfilments/.
APPEND_SLASH = False

TEMPLATES: list[dict[str, object]] = []

DATABASES = {"default": service_database("fulfillment")}

# Orders picked and packed at the same time, per process (see admission.py).
WAREHOUSE_CAPACITY = env_int("WAREHOUSE_CAPACITY", 8, minimum=1)
# How long one order takes to pick and pack. With the fulfillment queue's concurrency
# (FULFILLMENT_CONCURRENCY, 3) it sets how fast a backlog drains: 3 / 0.2 s = 15
# orders a second, so a sale of 300 sold in a rush of about 5 s drains in about 15 s
# more (docs/guides/warehouse.md). The legacy shop, one order at a time under its row
# lock, packs at most 5 a second.
WAREHOUSE_HANDLING_MS = env_int("WAREHOUSE_HANDLING_MS", 200, minimum=0)
# Part of the API contract, not a knob: a larger body is refused with 413.
WAREHOUSE_MAX_BODY_BYTES = 64 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = WAREHOUSE_MAX_BODY_BYTES

# Bearer token of every write (POST /fulfilments/, POST /stats/reset) and of the
# listing GET /fulfilments/; the same internal token the shop's internal API wants.
SECRET_KEY, INTERNAL_API_TOKEN = secrets_required(
    "DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN", debug=DEBUG
)
MAX_FULFILMENTS_PER_PAGE = 5000
