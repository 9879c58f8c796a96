"""Admission against a sale's allocation, and the per-client rate limit, in Redis.

The hot path never takes a database row lock: one Lua script admits an order
atomically against the sale's counter (a Redis hash: remaining units, state and a
generation). The database is the ground truth; the counter is rebuilt from it
(allocated - sold - pending) when it is missing (Redis restarted or flushed), when the
relay starts and when a sale opens or closes.

Why the generation: an order admitted by a counter that has since been rebuilt must not
be written, or a flush mid-sale could oversell. So the order's transaction checks,
after its INSERT, that the generation is still the one that admitted it, and the
rebuild counts orders under `LOCK TABLE ... IN SHARE MODE`, which waits for every
transaction that has inserted an order. Either the order's check sees the new
generation (it rolls back and is admitted again) or the rebuild counts it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

MISSING, CLOSED, SOLD_OUT = -1, -2, -3

_ADMIT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, '', 0} end
local gen = redis.call('HGET', KEYS[1], 'gen')
local sale = tonumber(redis.call('HGET', KEYS[1], 'sale'))
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return {-2, gen, sale} end
local remaining = tonumber(redis.call('HGET', KEYS[1], 'remaining'))
local units = tonumber(ARGV[1])
if remaining < units then
  redis.call('INCR', KEYS[2])
  return {-3, gen, sale}
end
redis.call('HINCRBY', KEYS[1], 'remaining', -units)
return {remaining - units, gen, sale}
"""

# Compensation: give units back, but only to the counter that took them.
_RELEASE = """
if redis.call('HGET', KEYS[1], 'gen') == ARGV[2] then
  return redis.call('HINCRBY', KEYS[1], 'remaining', ARGV[1])
end
return -1
"""

_RATE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if n > tonumber(ARGV[2]) then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 1 then ttl = 1 end
  return ttl
end
return 0
"""

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
                _scripts["admit"] = client.register_script(_ADMIT)
                _scripts["release"] = client.register_script(_RELEASE)
                _scripts["rate"] = client.register_script(_RATE)
                _client = client
    return _client


def _key(*parts: str) -> str:
    return ":".join([settings.ORDERS_REDIS_PREFIX, *parts])


def counter_key(slug: str) -> str:
    return _key("sale", slug)


def boards_dirty_key() -> str:
    return _key("boards-dirty")


def turned_away_key(slug: str) -> str:
    return _key("sale", slug, "turned-away")


@dataclass(frozen=True)
class Ticket:
    """Units admitted against one generation of a sale's counter."""

    slug: str
    units: int
    generation: str
    sale_id: int


@dataclass(frozen=True)
class Verdict:
    code: int
    generation: str
    sale_id: int

    @property
    def admitted(self) -> bool:
        return self.code >= 0


def counter_admit(*, slug: str, units: int) -> Verdict:
    """Take `units` from the counter if it has them: one atomic Lua call."""
    redis_get()
    code, generation, sale_id = _scripts["admit"](
        keys=[counter_key(slug), turned_away_key(slug)], args=[units]
    )
    return Verdict(
        code=int(code), generation=str(generation or ""), sale_id=int(sale_id or 0)
    )


def counter_release(*, ticket: Ticket) -> None:
    """Give a ticket's units back (its order was not written)."""
    redis_get()
    _scripts["release"](
        keys=[counter_key(ticket.slug)], args=[ticket.units, ticket.generation]
    )


def counter_generation_holds(*, ticket: Ticket) -> bool:
    return redis_get().hget(counter_key(ticket.slug), "gen") == ticket.generation


def counter_write(*, slug: str, sale_id: int, remaining: int, open_: bool) -> str:
    """Replace the counter with a new generation; returns that generation."""
    generation = uuid.uuid4().hex
    pipe = redis_get().pipeline(transaction=True)
    pipe.delete(counter_key(slug))
    pipe.hset(
        counter_key(slug),
        mapping={
            "remaining": max(remaining, 0),
            "sale": sale_id,
            "state": "open" if open_ else "closed",
            "gen": generation,
        },
    )
    pipe.execute()
    return generation


def counter_read(*, slug: str) -> tuple[int, bool] | None:
    """(remaining, open) from Redis, or None when the counter is missing."""
    values = redis_get().hmget(counter_key(slug), ["remaining", "state"])
    if values[0] is None:
        return None
    return int(values[0]), values[1] == "open"


def turned_away_count(*, slug: str) -> int:
    return int(redis_get().get(turned_away_key(slug)) or 0)


def rebuild_lock(*, slug: str) -> Any:
    """A Redis lock so that one process at a time rebuilds a sale's counter."""
    return redis_get().lock(_key("sale", slug, "rebuild"), timeout=30)


def rate_limit_hit(*, client: str) -> int:
    """Count one attempt of `client`; 0 if allowed, else seconds until allowed."""
    redis_get()
    return int(
        _scripts["rate"](
            keys=[_key("rate", client)],
            args=[settings.ORDERS_RATE_WINDOW_SECONDS, settings.ORDERS_RATE_LIMIT],
        )
    )


def outbox_kick() -> None:
    """Wake the relay now instead of at its next poll (after an order commits).

    Best effort: the order is committed already, and the relay polls anyway.
    """
    try:
        redis_get().lpush(_key("outbox-kick"), 1)
    except redis.RedisError:
        logger.warning("could not kick the outbox relay; it will poll")


def outbox_wait(*, timeout: float) -> None:
    """The relay's idle wait: until a kick or `timeout` seconds, then drop kicks."""
    client = redis_get()
    started = time.monotonic()
    try:
        client.blpop([_key("outbox-kick")], timeout=max(timeout, 0.01))
    except redis.RedisError:
        time.sleep(max(0.0, timeout - (time.monotonic() - started)))
        return
    client.delete(_key("outbox-kick"))


def ping() -> bool:
    try:
        return bool(redis_get().ping())
    except redis.RedisError:
        return False
