"""The fulfillment queue serves no HTTP: it is a Celery worker."""

from __future__ import annotations

urlpatterns: list[object] = []
