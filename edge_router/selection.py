"""Which profile serves a request: the mode, and for canary the visitor's bucket.

A canary visitor carries a bucket 0-99 in a cookie, drawn once on the first visit;
it is in the canary (strangler) when its bucket is below the percent. Raising the
percent only ever moves visitors from legacy to strangler, and a visitor never flips
back and forth mid-purchase.
"""

from __future__ import annotations

import random

from edge_router.config import CANARY_COOKIE
from edge_router.headers import cookie_value
from edge_router.modes import Mode
from edge_router.routes import Profile, RouteTable

COOKIE_MAX_AGE = 30 * 24 * 3600


def visitor_bucket(cookie_header: bytes | None) -> int | None:
    raw = cookie_value(cookie_header, CANARY_COOKIE)
    if raw is None or not raw.isdigit() or len(raw) > 2:
        return None
    return int(raw)


def bucket_cookie(bucket: int) -> tuple[bytes, bytes]:
    return (
        b"set-cookie",
        f"{CANARY_COOKIE}={bucket}; Path=/; Max-Age={COOKIE_MAX_AGE}; "
        f"HttpOnly; SameSite=Lax".encode(),
    )


def profile_for(
    mode: Mode, table: RouteTable, cookie_header: bytes | None
) -> tuple[Profile, tuple[bytes, bytes] | None]:
    """(the profile, a Set-Cookie header to add when a bucket was just drawn)."""
    if mode.mode == "legacy":
        return table.profiles["legacy"], None
    if mode.mode == "strangler":
        return table.profiles["strangler"], None
    bucket = visitor_bucket(cookie_header)
    new_cookie = None
    if bucket is None:
        bucket = random.randrange(100)
        new_cookie = bucket_cookie(bucket)
    name = "strangler" if bucket < mode.percent else "legacy"
    return table.profiles[name], new_cookie
