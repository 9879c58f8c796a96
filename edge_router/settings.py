"""Minimal settings for `python manage.py edge ...` and the edge's tests: no database.

The edge router is an ASGI app that never imports Django; these settings exist only so
its management command (and pytest-django, for tests/edge) can run.
"""

from __future__ import annotations

# No database, no secret, a key nobody knows: the stack-wide commands' settings.
from common.command_settings import *  # noqa: F403

INSTALLED_APPS = ["edge_router.apps.EdgeRouterConfig"]
