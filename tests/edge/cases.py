"""The routing table's expected answers, shared by the in-process, edge and nginx tests.

Each case: (method, canonical path, behaviour, origin). `variants` spells a path the
ways a client may, all of which must reach the same behaviour as the canonical one.
"""

from __future__ import annotations

MUSKIE = "/shop/rods/muskie-casting-rod/"

STRANGLER: list[tuple[str, str, str, str]] = [
    ("GET", MUSKIE, "muskie-page", "muskie-site"),
    ("HEAD", MUSKIE, "muskie-page", "muskie-site"),
    ("GET", MUSKIE + "assets/site.css", "muskie-assets", "muskie-site"),
    ("POST", MUSKIE, "muskie-product", "orders"),
    ("POST", MUSKIE + "assets/site.css", "muskie-product", "orders"),
    ("POST", MUSKIE + "buy/", "muskie-buy", "orders"),
    ("GET", MUSKIE + "buy/", "muskie-product", "orders"),
    ("GET", MUSKIE + "orders/42/", "muskie-product", "orders"),
    ("GET", "/shop/rods/tourney-casting-rod/", "tourney-page", "shop"),
    ("GET", "/shop/rods/muskie-casting-rod-2/", "default", "shop"),
    ("GET", "/shop/rods/", "default", "shop"),
    ("GET", "/shop/", "default", "shop"),
    ("GET", "/", "default", "shop"),
    ("GET", "/api/orders/", "orders-api", "orders"),
    ("POST", "/api/orders/", "api-order", "orders"),
    ("POST", "/api/orders/42/", "orders-api", "orders"),
    ("POST", "/shop/rods/tourney-casting-rod/buy/", "tourney-buy", "shop"),
    ("GET", "/shop/rods/tourney-casting-rod/buy/", "default", "shop"),
    ("POST", "/basket/checkout", "checkout", "shop"),
    ("GET", "/apiary/", "default", "shop"),
    ("GET", "/ws/orders/7/", "orders-ws", "orders"),
    ("GET", "/sale/muskie-casting-rod/", "sale-board", "orders"),
    ("GET", "/static/orders/sale.css", "orders-static", "orders"),
    ("POST", "/static/orders/sale.css", "default", "shop"),
    ("GET", "/static/shop/shop.css", "default", "shop"),
    ("GET", "/basket/", "default", "shop"),
    ("POST", "/basket/add/", "default", "shop"),
]

LEGACY: list[tuple[str, str, str, str]] = [
    ("GET", MUSKIE, "default", "shop"),
    ("GET", MUSKIE + "assets/site.css", "default", "shop"),
    ("POST", MUSKIE + "buy/", "muskie-buy", "shop"),
    ("GET", MUSKIE + "buy/", "default", "shop"),
    ("GET", "/api/orders/", "default", "shop"),
    ("GET", "/ws/orders/7/", "default", "shop"),
    ("GET", "/sale/muskie-casting-rod/", "default", "shop"),
    ("GET", "/static/orders/sale.css", "default", "shop"),
    ("GET", "/shop/rods/tourney-casting-rod/", "tourney-page", "shop"),
    ("POST", "/shop/rods/tourney-casting-rod/buy/", "tourney-buy", "shop"),
    ("POST", "/basket/checkout", "checkout", "shop"),
    ("GET", "/basket/checkout", "default", "shop"),
    ("POST", "/api/orders/", "default", "shop"),
    ("GET", "/", "default", "shop"),
]

PROFILE_CASES = {"strangler": STRANGLER, "legacy": LEGACY}


def variants(path: str) -> dict[str, str]:
    """Spellings of `path` that origins read as the same path, by kind."""
    parts = path.strip("/").split("/")
    first, rest = parts[0], "/".join(parts[1:])
    out = {
        "dot-dot": f"/{first}/x/../{rest}/" if rest else f"/x/../{first}/",
        "dot": f"/{first}/./{rest}/" if rest else f"/./{first}/",
        "double-slashes": "//" + "//".join(parts) + "/",
        "encoded-slash": f"/{first}%2F{rest}/" if rest else f"/{first}%2F",
        "encoded-dot-dot": f"/{first}/x/%2e%2e/{rest}/"
        if rest
        else f"/x/%2E%2E/{first}/",
        "encoded-letters": "/"
        + path.strip("/").replace("s", "%73").replace("o", "%6F")
        + "/",
        "upper-case": path.upper(),
        "mixed-case": "/" + path.strip("/").title() + "/",
        "no-trailing-slash": path.rstrip("/") or "/",
        "trailing-dot-slash": path.rstrip("/") + "/./",
    }
    if path == "/":
        out = {"double-slashes": "//", "dot": "/./", "dot-dot": "/x/../"}
    return out
