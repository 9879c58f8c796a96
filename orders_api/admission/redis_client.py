"""The orders service's Redis client: one per process, its Lua scripts registered.

Made by the common kit (common/redis_client.py): connect and read timeouts, so a
dead or hanging Redis is a RedisUnavailable (503) within about a second, never a
request thread held (orders_api/web/errors.py answers it).
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from django.conf import settings

from common.redis_client import redis_from_url
from orders_api.admission import scripts

_client: redis.Redis | None = None
_scripts: dict[str, Any] = {}
_lock = threading.Lock()


def redis_get() -> redis.Redis:
    """One client (and connection pool) per process."""
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                client = redis_from_url(settings.REDIS_URL, decode_responses=True)
                # Registering sends nothing; a script missing after a Redis restart
                # is loaded again on its next call.
                _scripts["admit"] = client.register_script(scripts.ADMIT)
                _scripts["release"] = client.register_script(scripts.RELEASE)
                _scripts["rate"] = client.register_script(scripts.RATE)
                _scripts["accept"] = client.register_script(scripts.ACCEPT)
                _scripts["give_back"] = client.register_script(scripts.GIVE_BACK)
                _client = client
    return _client


def script_get(name: str) -> Any:
    """A registered Lua script ("admit", "release", "rate", "accept", "give_back")."""
    redis_get()
    return _scripts[name]


def redis_ping() -> bool:
    try:
        return bool(redis_get().ping())
    except redis.RedisError:
        return False
