"""Admission: per-client token buckets and request body limits."""

from __future__ import annotations

import math
import time
from collections import OrderedDict

from edge_router.routes import Rate


class BodyTooLarge(Exception):
    """The request body went past the behaviour's `max_body`."""


class TokenBuckets:
    """One token bucket per client address for a behaviour with a rate.

    In-process: each edge worker keeps its own, so N workers admit up to N times
    the rate. The least recently seen clients are forgotten beyond `max_clients`.
    """

    def __init__(self, rate: Rate, *, max_clients: int = 50_000) -> None:
        self.rate = rate
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> int:
        """0 when admitted; else the whole seconds to wait (a Retry-After value)."""
        now = time.monotonic() if now is None else now
        burst = float(self.rate.burst)
        tokens, last = self._buckets.pop(client, (burst, now))
        tokens = min(burst, tokens + (now - last) * self.rate.per_second)
        if tokens >= 1.0:
            self._buckets[client] = (tokens - 1.0, now)
            wait = 0
        else:
            self._buckets[client] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / self.rate.per_second))
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        return wait
