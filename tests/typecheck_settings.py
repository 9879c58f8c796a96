"""Settings for mypy's django-stubs plugin only (pyproject.toml [tool.django-stubs]).

Each service runs with its own settings and sees only its own apps and settings; the
type checker needs one module that knows every service's models and settings, so this
one takes them all (a value set twice keeps the last one: only the names matter here).
"""

from __future__ import annotations

import os
from importlib import import_module

from common.stack_secrets import secrets_for_processes

# The services' settings refuse to load without their secrets; the checker only
# needs the names, so any private value will do.
os.environ.update(secrets_for_processes())

from edge_router.settings import *  # noqa: F403
from fulfillment_queue.settings import *  # noqa: F403
from observability.settings import *  # noqa: F403
from orders_api.settings import *  # noqa: F403
from shop.settings import *  # noqa: F403
from warehouse.settings import *  # noqa: F403

# Set by globals().update(celery_settings(...)) in the services' settings, which the
# plugin cannot follow: declared here with their type for the checker only.
CELERY_BROKER_URL: str

SERVICES = [
    "shop", "orders_api", "fulfillment_queue", "warehouse", "edge_router",
    "observability",
]  # fmt: skip

# Every service's apps, once each, in the services' own order: a new app is picked up.
INSTALLED_APPS = list(
    dict.fromkeys(
        app
        for service in SERVICES
        for app in import_module(f"{service}.settings").INSTALLED_APPS
    )
)
