"""Waking the relay: a committed order kicks it now, instead of at its next poll."""

from __future__ import annotations

import functools
import logging
import time

import redis
from django.conf import settings

from common.redis_client import redis_from_url
from orders_api.admission.keys import outbox_kick_key
from orders_api.admission.redis_client import redis_get

logger = logging.getLogger(__name__)


def outbox_kick() -> None:
    """Wake the relay now instead of at its next poll (after an order commits).

    Best effort: the order is committed already, and the relay polls anyway.
    """
    try:
        redis_get().lpush(outbox_kick_key(), 1)
    except redis.RedisError:
        logger.warning("could not kick the outbox relay; it will poll")


@functools.cache
def _wait_client(timeout: float) -> redis.Redis:
    # BLPOP holds the connection for `timeout` s: a read timeout that much longer.
    return redis_from_url(
        settings.REDIS_URL, blocking_seconds=timeout, max_connections=2
    )


def outbox_wait(*, timeout: float, gather: float = 0.0) -> None:
    """The relay's idle wait: until a kick or `timeout` seconds, then drop kicks.
    Woken by a kick, `gather` seconds more: the orders committing meanwhile go out
    in the same pass."""
    timeout = max(timeout, 0.01)
    client = _wait_client(timeout)
    started = time.monotonic()
    try:
        kicked = client.blpop([outbox_kick_key()], timeout=timeout)
    except redis.RedisError:
        time.sleep(max(0.0, timeout - (time.monotonic() - started)))
        return
    if kicked and gather > 0:
        time.sleep(gather)
    try:
        client.delete(outbox_kick_key())
    except redis.RedisError:
        logger.warning("could not drop the outbox kicks; the relay polls")
