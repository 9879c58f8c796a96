"""What a buyer reads off a page: the form's CSRF token and idempotency key."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_IDEMPOTENCY = re.compile(r'name="idempotency_key" value="([^"]*)"')
_BUY_FORM = re.compile(r'<form class="buy-form')
# /orders/<number>/ (the shop) or /shop/<cat>/<slug>/orders/<uuid>/ (orders service)
_SHOP_ORDER = re.compile(r"^/orders/([A-Za-z0-9-]+)/$")
_NEW_ORDER = re.compile(r"/orders/([0-9a-f-]{36})/$")


@dataclass(frozen=True)
class BuyForm:
    # None on the sale's static minisite: its form is sent with the page's Origin.
    csrf_token: str | None
    idempotency_key: str | None


def buy_form(html: str) -> BuyForm | None:
    """The page's buy-now form, or None when it shows none (sold out, sale over)."""
    if not _BUY_FORM.search(html):
        return None
    csrf = _CSRF.search(html)
    key = _IDEMPOTENCY.search(html)
    return BuyForm(csrf.group(1) if csrf else None, key.group(1) if key else None)


@dataclass(frozen=True)
class OrderLink:
    """Where a 303 after buy now points: a shop order number or a new order's id."""

    number: str | None
    order_id: str | None
    path: str


def order_link(location: str) -> OrderLink | None:
    path = urlsplit(location).path
    shop = _SHOP_ORDER.match(path)
    if shop:
        return OrderLink(number=shop.group(1), order_id=None, path=path)
    new = _NEW_ORDER.search(path)
    if new:
        return OrderLink(number=None, order_id=new.group(1), path=path)
    return None
