"""Minimal settings for `python manage.py edge ...` and the edge's tests: no database.

The edge router is an ASGI app that never imports Django; these settings exist only so
its management command (and pytest-django, for tests/edge) can run.
"""

from __future__ import annotations

from common.env import env_str

SECRET_KEY = env_str(
    "DJANGO_SECRET_KEY", "insecure-demo-key-change-me-for-anything-real"
)
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["edge_router.apps.EdgeRouterConfig"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TIME_ZONE = "UTC"
