"""The one way to talk to Redis: connect and read timeouts, no silent retries.

A Redis that is down refuses at once, but one that accepts connections and never
answers (a stalled server, a dropped route) holds the caller until its socket gives
up. redis-py waits 5 s per command by default and `Redis.from_url` retries ten
times; Kombu and channels-redis wait forever. So every Redis client of the stack is
made by `redis_from_url`, or takes `redis_timeouts()` (Celery's transport options,
channels-redis' hosts, Django's cache), and a dead or hanging Redis costs a caller
about a second: the caller answers `RedisUnavailable` (503 + Retry-After).

    REDIS_CONNECT_TIMEOUT   seconds to open a connection (default 0.5)
    REDIS_SOCKET_TIMEOUT    seconds to wait for any answer (default 1)
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from common.env import env_float
from common.errors import ApplicationError

# What a Redis that is down, hanging or still loading its data raises (a refusal,
# a timeout, BusyLoadingError): worth a retry later, never a 500.
REDIS_FAULTS: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError)


class RedisUnavailable(ApplicationError):
    """Redis is down or not answering: the request can be retried in a moment."""

    status_code = 503
    code = "redis_unavailable"
    retry_after = 1

    def __init__(self, detail: str = "", **extra: Any) -> None:
        super().__init__(
            detail or "We cannot take orders this very second; please try again.",
            **extra,
        )


def redis_timeouts() -> dict[str, float]:
    """The connect and read timeouts every Redis client of the stack uses, as the
    keyword arguments redis-py (and Kombu, channels-redis) take."""
    return {
        "socket_connect_timeout": env_float("REDIS_CONNECT_TIMEOUT", 0.5),
        "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT", 1.0),
    }


def redis_from_url(
    url: str,
    *,
    blocking_seconds: float = 0.0,
    max_connections: int = 64,
    **options: Any,
) -> redis.Redis:
    """A client with its own pool, the stack's timeouts and no retries.

    `blocking_seconds`: the longest blocking command (BLPOP) the client sends; its
    read timeout is that much longer. No retries: a retry would double the wait of a
    caller that answers 503 anyway, and a pooled connection Redis closed (a restart)
    is noticed and reopened when it is taken from the pool. Requests wait for a free
    connection (never fail for want of one), a bounded time.
    """
    timeouts = redis_timeouts()
    timeouts["socket_timeout"] += blocking_seconds
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=10,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
        **{**timeouts, **options},
    )
    return redis.Redis(connection_pool=pool)
