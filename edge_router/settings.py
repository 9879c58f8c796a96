"""Minimal settings for `python manage.py edge ...` and the edge's tests: no database.

The edge router is an ASGI app that never imports Django; these settings exist only so
its management command (and pytest-django, for tests/edge) can run.
"""

from __future__ import annotations

from common.stack_secrets import secret_generate

# Nothing here signs anything (no sessions, no forms): a key nobody knows, per process.
SECRET_KEY = secret_generate()
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["edge_router.apps.EdgeRouterConfig"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TIME_ZONE = "UTC"
