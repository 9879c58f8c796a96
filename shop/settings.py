"""Settings of the legacy shop (WSGI, gunicorn, port 8001, database `shop`)."""

from __future__ import annotations

from common.env import env_float, env_int, env_str, service_database
from common.redis_client import redis_timeouts
from common.settings import *  # noqa: F403
from common.settings import DEBUG
from common.stack_secrets import secrets_required

ROOT_URLCONF = "shop.urls"
WSGI_APPLICATION = "shop.wsgi.application"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "common",
    "shop",
]

MIDDLEWARE = [
    "common.middleware.TraceIdMiddleware",
    # Above sessions and CSRF: it sees the cookies they set (common/cache_control.py).
    "common.cache_control.CacheControlMiddleware",
    "common.middleware.ContentSecurityPolicyMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "shop.context_processors.shop_context",
            ],
        },
    },
]

DATABASES = {"default": service_database("shop")}

STATIC_URL = "/static/"
# Served straight from the apps' static folders (no collectstatic step to forget);
# set STATIC_ROOT only to run collectstatic for a CDN or another web server.
STATIC_ROOT = env_str("STATIC_ROOT", "") or None
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = False

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/shop/"
LOGOUT_REDIRECT_URL = "/shop/"
CSRF_FAILURE_VIEW = "shop.views.csrf_failure"

# The legacy order path calls the warehouse synchronously, inside the order transaction.
WAREHOUSE_TIMEOUT_SECONDS = env_float("SHOP_WAREHOUSE_TIMEOUT", 2.0)
MAX_QUANTITY_PER_LINE = env_int("SHOP_MAX_QUANTITY_PER_LINE", 10, minimum=1)
MAX_BASKET_LINES = env_int("SHOP_MAX_BASKET_LINES", 20, minimum=1)

# The internal JSON API (stock transfers to the orders service) wants this bearer
# token. No default: the settings refuse to load without both secrets.
SECRET_KEY, INTERNAL_API_TOKEN = secrets_required(
    "DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN", debug=DEBUG
)

# Sessions (and so baskets) live in PostgreSQL, read through the Redis cache.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env_str("SHOP_CACHE_PREFIX", "shop"),
        "TIMEOUT": 3600,
        # The stack's Redis timeouts (common/redis_client.py): a hanging Redis
        # costs a page about a second, not a thread.
        "OPTIONS": redis_timeouts(),
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
