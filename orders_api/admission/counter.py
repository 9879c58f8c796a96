"""Admission against a sale's allocation: the sale's counter in Redis.

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

import uuid
from dataclasses import dataclass
from typing import Any

from orders_api.admission.keys import counter_key, rebuild_lock_key, turned_away_key
from orders_api.admission.redis_client import redis_get, script_get


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
    code, generation, sale_id = script_get("admit")(
        keys=[counter_key(slug), turned_away_key(slug)], args=[units]
    )
    return Verdict(
        code=int(code), generation=str(generation or ""), sale_id=int(sale_id or 0)
    )


def counter_release(*, ticket: Ticket) -> None:
    """Give a ticket's units back (its order was not written)."""
    script_get("release")(
        keys=[counter_key(ticket.slug)], args=[ticket.units, ticket.generation]
    )


def counter_generation_holds(*, ticket: Ticket) -> bool:
    return redis_get().hget(counter_key(ticket.slug), "gen") == ticket.generation


def counter_generation(*, slug: str) -> str | None:
    """The counter's current generation, or None when it is missing."""
    generation = redis_get().hget(counter_key(slug), "gen")
    return None if generation is None else str(generation)


def counter_write(
    *, slug: str, sale_id: int, remaining: int, open_: bool, name: str = "sale"
) -> str:
    """Replace the counter with a new generation; returns that generation. The
    sale's `name` is kept beside it: a refusal is worded from Redis alone."""
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
            "name": name,
            "seq": 0,
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


@dataclass(frozen=True)
class Reading:
    """A counter as the reconcile compares it: `changes` counts every admission and
    give-back since it was written (the scripts' `seq`)."""

    remaining: int
    generation: str
    changes: int


def counter_reading(*, slug: str) -> Reading | None:
    """The counter's units left, generation and count of changes; None if missing."""
    values = redis_get().hmget(counter_key(slug), ["remaining", "gen", "seq"])
    if values[0] is None:
        return None
    return Reading(
        remaining=int(values[0]), generation=str(values[1]), changes=int(values[2] or 0)
    )


def turned_away_count(*, slug: str) -> int:
    return int(redis_get().get(turned_away_key(slug)) or 0)


def rebuild_lock(*, slug: str) -> Any:
    """A Redis lock so that one process at a time rebuilds a sale's counter."""
    return redis_get().lock(rebuild_lock_key(slug), timeout=30)
