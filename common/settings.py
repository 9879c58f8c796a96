"""Settings shared by every Django service; each service's settings module builds on it.

Each value is read from the environment once, here. See docs/guides/configuration.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.env import env_bool, env_int, env_list, env_str
from common.tracing.logs import logging_dict

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", False)
# No SECRET_KEY here: each service's settings require theirs (common.stack_secrets),
# and the command-only settings (edge, observability), which sign nothing, make one.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

# Ports are fixed project-wide: edge 8000, shop 8001, orders 8002, warehouse 8003.
SHOP_PORT = env_int("SHOP_PORT", 8001)
ORDERS_PORT = env_int("ORDERS_PORT", 8002)
WAREHOUSE_PORT = env_int("WAREHOUSE_PORT", 8003)
WAREHOUSE_URL = env_str("WAREHOUSE_URL", f"http://127.0.0.1:{WAREHOUSE_PORT}")

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-gb"
USE_I18N = False

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Small bodies only: nothing in the shop or the warehouse needs more than this.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DJANGO_MAX_BODY_BYTES", 64 * 1024, minimum=1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# One line format for every process, each line with its trace_id and span_id
# (common/tracing/logs.py, docs/guides/tracing.md).
LOGGING: dict[str, Any] = logging_dict(LOG_LEVEL)

# --- what a browser is told (docs/guides/security.md) --------------------------------
# Every HTML page's Content-Security-Policy (common.middleware): the pages' own
# scripts, styles and images only, no inline code, no framing. 'self' covers the
# same-origin websockets of the orders pages. CSP_POLICY replaces it; empty: none.
CSP_POLICY = env_str(
    "CSP_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'",
)
# DJANGO_HTTPS=1 when visitors reach the stack over HTTPS: the session and CSRF
# cookies are sent over HTTPS only, and a request the edge forwards with
# X-Forwarded-Proto: https counts as secure (the edge replaces whatever header the
# visitor sent, so the header is the edge's word; CSRF's Origin check needs it).
SERVED_OVER_HTTPS = env_bool("DJANGO_HTTPS", False)
SESSION_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if SERVED_OVER_HTTPS else None
)
