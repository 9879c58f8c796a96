"""The orders service's Redis client: one per process, its Lua scripts registered."""

from __future__ import annotations

import threading
from typing import Any

import redis
from django.conf import settings

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
                # Blocking: a request waits for a free connection, never fails.
                pool = redis.BlockingConnectionPool.from_url(
                    settings.REDIS_URL,
                    max_connections=64,
                    timeout=10,
                    decode_responses=True,
                    health_check_interval=30,
                )
                client = redis.Redis(connection_pool=pool)
                _scripts["admit"] = client.register_script(scripts.ADMIT)
                _scripts["release"] = client.register_script(scripts.RELEASE)
                _scripts["rate"] = client.register_script(scripts.RATE)
                _client = client
    return _client


def script_get(name: str) -> Any:
    """A registered Lua script ("admit", "release", "rate")."""
    redis_get()
    return _scripts[name]


def redis_ping() -> bool:
    try:
        return bool(redis_get().ping())
    except redis.RedisError:
        return False
