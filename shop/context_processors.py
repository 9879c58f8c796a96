"""What every shop page shows: the category navigation and the basket count."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from shop.catalogue import FLASH_SALE_SLUG
from shop.selectors import SEARCH_MAX_LENGTH, category_list
from shop.services import basket_items


def shop_context(request: HttpRequest) -> dict[str, Any]:
    session = getattr(request, "session", None)
    items = basket_items(session=session) if session is not None else []
    return {
        "nav_categories": category_list(),
        "basket_count": sum(item.quantity for item in items),
        "search_max_length": SEARCH_MAX_LENGTH,
        "flash_sale_slug": FLASH_SALE_SLUG,
    }
