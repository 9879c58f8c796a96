"""The per-client rate limit of order attempts (a fixed window in Redis)."""

from __future__ import annotations

from django.conf import settings

from orders_api.admission.keys import rate_key
from orders_api.admission.redis_client import script_get
from orders_api.exceptions import RateLimited


def rate_limit_hit(*, client: str) -> int:
    """Count one attempt of `client`; 0 if allowed, else seconds until allowed."""
    return int(
        script_get("rate")(
            keys=[rate_key(client)],
            args=[settings.ORDERS_RATE_WINDOW_SECONDS, settings.ORDERS_RATE_LIMIT],
        )
    )


def rate_limit_check(*, client: str) -> None:
    """Count one attempt; RateLimited (429 + Retry-After) when over the limit."""
    retry_after = rate_limit_hit(client=client)
    if retry_after:
        raise RateLimited(
            "Too many orders from you at once; try again shortly.",
            retry_after=retry_after,
        )
