"""Template filters for prices and stock, so templates never do arithmetic."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()

LOW_STOCK = 10


@register.filter
def money(value: Decimal | int | None) -> str:
    """`Decimal("1234.5")` → `$1,234.50`. Decimal all the way: no float rounding."""
    if value is None or value == "":
        return ""
    return f"${Decimal(value):,.2f}"


@register.filter
def stock_label(stock: int) -> str:
    if stock <= 0:
        return "Sold out"
    if stock <= LOW_STOCK:
        return f"Only {stock} left"
    return "In stock"


@register.filter
def stock_level(stock: int) -> str:
    """A CSS modifier for the stock badge."""
    if stock <= 0:
        return "out"
    if stock <= LOW_STOCK:
        return "low"
    return "ok"
