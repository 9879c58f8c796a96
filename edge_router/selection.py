"""Which profile serves a request: the mode, and for canary the visitor's side.

In canary mode each visitor carries a random id (the `edge_visitor` cookie, drawn on
its first visit) and is in the canary (strangler) when the id's hash says so
(edge_router/canary.py, the same function nginx's split_clients uses). Raising the
percent only ever moves visitors from legacy to strangler, and a visitor never flips
back and forth mid-purchase.
"""

from __future__ import annotations

from edge_router.canary import (
    VISITOR_COOKIE,
    in_canary,
    visitor_id_new,
    visitor_id_valid,
)
from edge_router.headers import cookie_value
from edge_router.modes import Mode
from edge_router.routes import Profile, RouteTable

COOKIE_MAX_AGE = 30 * 24 * 3600


def visitor_cookie(visitor_id: str) -> tuple[bytes, bytes]:
    return (
        b"set-cookie",
        f"{VISITOR_COOKIE}={visitor_id}; Path=/; Max-Age={COOKIE_MAX_AGE}; "
        f"HttpOnly; SameSite=Lax".encode(),
    )


def profile_for(
    mode: Mode, table: RouteTable, cookie_header: bytes | None
) -> tuple[Profile, tuple[bytes, bytes] | None]:
    """(the profile, a Set-Cookie header to add when a visitor id was just drawn)."""
    if mode.mode == "legacy":
        return table.profiles["legacy"], None
    if mode.mode == "strangler":
        return table.profiles["strangler"], None
    visitor = cookie_value(cookie_header, VISITOR_COOKIE)
    new_cookie = None
    if visitor is None or not visitor_id_valid(visitor):
        visitor = visitor_id_new()
        new_cookie = visitor_cookie(visitor)
    name = "strangler" if in_canary(visitor, mode.percent) else "legacy"
    return table.profiles[name], new_cookie
