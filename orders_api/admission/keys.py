"""Every Redis key of the orders service, under ORDERS_REDIS_PREFIX.

Read per call, not at import: tests give each run a prefix of its own.
"""

from __future__ import annotations

from django.conf import settings


def _key(*parts: str) -> str:
    return ":".join([settings.ORDERS_REDIS_PREFIX, *parts])


def counter_key(slug: str) -> str:
    return _key("sale", slug)


def turned_away_key(slug: str) -> str:
    return _key("sale", slug, "turned-away")


def rebuild_lock_key(slug: str) -> str:
    return _key("sale", slug, "rebuild")


def rate_key(client: str) -> str:
    return _key("rate", client)


def boards_dirty_key() -> str:
    return _key("boards-dirty")


def outbox_kick_key() -> str:
    return _key("outbox-kick")


def idempotency_key(scope: str, client: str, key: str) -> str:
    """Where an accept's Idempotency-Key is held (admission/scripts.py ACCEPT)."""
    return _key("idem", scope, client, key)
