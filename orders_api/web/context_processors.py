"""What every page of the orders service shows: the shop's navigation, as links."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

# The shop's categories: plain links, served by the shop behind the edge.
SHOP_NAV: tuple[tuple[str, str], ...] = (
    ("Rods", "/shop/rods/"),
    ("Reels", "/shop/reels/"),
    ("Hard baits", "/shop/hard-baits/"),
    ("Soft baits", "/shop/soft-baits/"),
    ("Swimbaits", "/shop/swimbaits/"),
    ("Tackle storage", "/shop/tackle-storage/"),
    ("Waders", "/shop/waders/"),
)


def orders_context(request: HttpRequest) -> dict[str, Any]:
    return {"shop_nav": SHOP_NAV}
