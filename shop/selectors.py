"""Reads of the legacy shop: catalogue, basket contents, orders."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.db.models import Q, QuerySet
from django.http import Http404

from shop.catalogue import FLASH_SALE_CATEGORY, FLASH_SALE_SLUG
from shop.models import Category, Order, OrderLine, Product
from shop.services import ORDERS_SESSION_KEY, basket_items

SEARCH_MAX_LENGTH = 100


def category_list() -> QuerySet[Category]:
    return Category.objects.all()


def category_list_with_products() -> QuerySet[Category]:
    """Categories with their products prefetched (two queries): cover images."""
    return Category.objects.prefetch_related("products")


def category_get(*, slug: str) -> Category:
    try:
        return Category.objects.get(slug=slug)
    except Category.DoesNotExist:
        raise Http404("No such category.") from None


def product_list(*, category: Category | None = None) -> QuerySet[Product]:
    products = Product.objects.select_related("category")
    if category is not None:
        products = products.filter(category=category)
    return products


def product_featured() -> QuerySet[Product]:
    return Product.objects.select_related("category").filter(featured=True)


def product_get(*, category_slug: str, slug: str) -> Product:
    try:
        return Product.objects.select_related("category").get(
            category__slug=category_slug, slug=slug
        )
    except Product.DoesNotExist:
        raise Http404("No such product.") from None


def product_get_by_sku(*, sku: str) -> Product:
    try:
        return Product.objects.select_related("category").get(sku=sku)
    except Product.DoesNotExist:
        raise Http404("No such product.") from None


def product_find_by_sku(*, sku: str) -> Product | None:
    return Product.objects.select_related("category").filter(sku=sku).first()


def product_flash_sale() -> Product | None:
    """The product the flash sale is about, if the catalogue has it."""
    return (
        Product.objects.select_related("category")
        .filter(category__slug=FLASH_SALE_CATEGORY, slug=FLASH_SALE_SLUG)
        .first()
    )


def product_search(*, query: str) -> QuerySet[Product]:
    terms = query.split()[:8]
    products = Product.objects.select_related("category")
    if not terms:
        return products.none()
    for term in terms:
        products = products.filter(
            Q(name__icontains=term)
            | Q(description__icontains=term)
            | Q(sku__iexact=term)
            | Q(category__name__icontains=term)
        )
    return products


@dataclass(frozen=True)
class BasketLine:
    product: Product
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity


@dataclass(frozen=True)
class Basket:
    lines: list[BasketLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)

    def __bool__(self) -> bool:
        return bool(self.lines)


def basket_get(*, session: SessionBase) -> Basket:
    items = basket_items(session=session)
    if not items:
        return Basket()
    products = Product.objects.select_related("category").in_bulk(
        [item.product_id for item in items]
    )
    # A product deleted since it was added simply drops out of the basket.
    return Basket(
        [
            BasketLine(products[item.product_id], item.quantity)
            for item in items
            if item.product_id in products
        ]
    )


def order_list_for_user(*, user: Any) -> QuerySet[Order]:
    return Order.objects.filter(user=user).prefetch_related("lines")


def order_get_visible(*, number: str, user: Any, session: SessionBase) -> Order:
    """An order its owner (signed in) or its buyer (this session) may see; else 404."""
    try:
        order = Order.objects.prefetch_related("lines").get(number=number)
    except Order.DoesNotExist:
        raise Http404("No such order.") from None
    mine = user.is_authenticated and order.user_id == user.pk
    this_session = number in session.get(ORDERS_SESSION_KEY, [])
    if not (mine or this_session or (user.is_authenticated and user.is_staff)):
        raise Http404("No such order.")
    return order


def order_list_by_sku(
    *, sku: str, since: datetime, after_id: int, limit: int
) -> list[Order]:
    """Orders with a line of `sku` placed at or after `since`, by id, after `after_id`.

    For other services only (the sale run's reconciliation, over the internal API).
    """
    ids = (
        OrderLine.objects.filter(
            sku=sku, order__created_at__gte=since, order_id__gt=after_id
        )
        .order_by("order_id")
        .values_list("order_id", flat=True)
        .distinct()[:limit]
    )
    return list(
        Order.objects.filter(pk__in=list(ids)).prefetch_related("lines").order_by("pk")
    )
