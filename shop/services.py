"""Writes of the legacy shop: the basket and synchronous order placement.

Plain functions, keyword-only, named `<entity>_<action>` (HackSoftware styleguide).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.db import IntegrityError, transaction
from django.db.models import F

from common.tracing.core import current_trace_id
from shop.exceptions import (
    EmptyBasket,
    InsufficientStock,
    InvalidQuantity,
    OnSaleElsewhere,
    OutOfStock,
    ProductNotFound,
    TransferConflict,
)
from shop.models import Order, OrderLine, Product, StockTransfer
from shop.warehouse_client import FulfillmentLine, fulfillment_request

logger = logging.getLogger(__name__)
BASKET_SESSION_KEY = "basket"
ORDERS_SESSION_KEY = "orders"
_NUMBER_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class OrderItem:
    product_id: int
    quantity: int


def quantity_check(quantity: Any) -> int:
    """A quantity a customer may order: an integer from 1 to the per-line maximum."""
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise InvalidQuantity("Quantity must be a whole number.")
    maximum = settings.MAX_QUANTITY_PER_LINE
    if quantity < 1 or quantity > maximum:
        raise InvalidQuantity(f"Quantity must be between 1 and {maximum}.")
    return quantity


# --- basket (kept in the visitor's session) -------------------------------------------


def _basket_raw(session: SessionBase) -> dict[str, int]:
    raw = session.get(BASKET_SESSION_KEY) or {}
    return {str(k): int(v) for k, v in raw.items()}


def basket_add(*, session: SessionBase, product: Product, quantity: int) -> int:
    """Add to the basket, never past the per-line maximum. Returns the new quantity."""
    quantity_check(quantity)
    if product.sale_url:
        raise OnSaleElsewhere(name=product.name, sale_url=product.sale_url)
    raw = _basket_raw(session)
    key = str(product.pk)
    if key not in raw and len(raw) >= settings.MAX_BASKET_LINES:
        raise InvalidQuantity(
            f"A basket holds at most {settings.MAX_BASKET_LINES} different products."
        )
    new_quantity = raw.get(key, 0) + quantity
    quantity_check(new_quantity)
    raw[key] = new_quantity
    session[BASKET_SESSION_KEY] = raw
    return new_quantity


def basket_update(*, session: SessionBase, product_id: int, quantity: int) -> None:
    """Set a line's quantity; 0 removes the line."""
    raw = _basket_raw(session)
    key = str(product_id)
    if key not in raw:
        raise ProductNotFound("That product is not in your basket.")
    if quantity == 0:
        del raw[key]
    else:
        raw[key] = quantity_check(quantity)
    session[BASKET_SESSION_KEY] = raw


def basket_clear(*, session: SessionBase) -> None:
    session.pop(BASKET_SESSION_KEY, None)


def basket_items(*, session: SessionBase) -> list[OrderItem]:
    return [OrderItem(int(k), v) for k, v in _basket_raw(session).items()]


# --- orders ---------------------------------------------------------------------------


def _order_number() -> str:
    return "LF-" + "".join(secrets.choice(_NUMBER_ALPHABET) for _ in range(8))


def _order_wanted(items: Sequence[OrderItem]) -> dict[int, int]:
    """Quantity per product (a product listed twice is summed), each one checked."""
    if not items:
        raise EmptyBasket("Your basket is empty.")
    wanted: dict[int, int] = {}
    for item in items:
        wanted[item.product_id] = wanted.get(item.product_id, 0) + item.quantity
    for quantity in wanted.values():
        quantity_check(quantity)
    return wanted


def _products_lock(wanted: dict[int, int], *, basket: bool) -> list[Product]:
    """The wanted products' rows, locked in primary-key order (so two orders never
    wait on each other), each with enough stock. Inside the order's transaction."""
    products = list(
        Product.objects.select_for_update().filter(pk__in=wanted).order_by("pk")
    )
    if len(products) != len(wanted):
        raise ProductNotFound("One of the products no longer exists.")
    for product in products:
        if basket and product.sale_url:
            # Its stock is the sale's now: what the shop kept is not for this door.
            raise OnSaleElsewhere(name=product.name, sale_url=product.sale_url)
        if product.stock < wanted[product.pk]:
            raise OutOfStock(
                f"Sorry, only {product.stock} × {product.name} left in stock."
                if product.stock
                else f"Sorry, {product.name} is sold out.",
                sku=product.sku,
                available=product.stock,
            )
    return products


def _order_write(
    *, products: list[Product], wanted: dict[int, int], email: str, user: Any
) -> Order:
    """The order and its lines, the stock taken. Inside the order's transaction,
    on rows `_products_lock` holds."""
    total = sum((p.price * wanted[p.pk] for p in products), Decimal("0"))
    order = Order.objects.create(
        number=_order_number(),
        user=user if user is not None and user.is_authenticated else None,
        email=email,
        status=Order.Status.FULFILLED,
        total=total,
        trace_id=current_trace_id(),
    )
    for product in products:
        Product.objects.filter(pk=product.pk).update(
            stock=F("stock") - wanted[product.pk]
        )
        OrderLine.objects.create(
            order=order,
            product=product,
            sku=product.sku,
            name=product.name,
            unit_price=product.price,
            quantity=wanted[product.pk],
        )
    return order


def order_place(
    *,
    items: Sequence[OrderItem],
    email: str,
    user: Any = None,
    basket: bool = True,
) -> Order:
    """Place an order the monolith's way: synchronously, all or nothing.

    `basket`: the order comes through the basket and checkout, the doors that stay on
    the shop whatever the edge's mode; a product in an open sale is refused there (its
    sale is the way to buy it). The product page's buy-now (`basket=False`) is the
    product's own URL: in strangler mode the edge sends it to the sale, in legacy mode
    the operator has chosen the monolith, its own stock and the edge's limit on it.

    One transaction locks the products' rows in primary-key order, refuses to oversell,
    takes the stock, writes the order and its lines, then asks the warehouse to fulfil
    it and waits for the answer. If the warehouse refuses or times out, the exception
    rolls everything back: stock is unchanged and no order exists.
    """
    started = time.perf_counter()
    wanted = _order_wanted(items)
    with transaction.atomic():
        products = _products_lock(wanted, basket=basket)
        order = _order_write(products=products, wanted=wanted, email=email, user=user)
        receipt = fulfillment_request(
            order_ref=order.number,
            lines=[FulfillmentLine(p.sku, wanted[p.pk]) for p in products],
        )
        order.warehouse_ref = str(receipt.fulfillment_id)
        order.processing_ms = round((time.perf_counter() - started) * 1000)
        order.save(update_fields=["warehouse_ref", "processing_ms", "updated_at"])
    logger.info(
        "order %s placed: warehouse %s, %d ms",
        order.number,
        order.warehouse_ref,
        order.processing_ms,
    )
    return order


def order_remember(*, session: SessionBase, order: Order) -> None:
    """Let an anonymous visitor see the orders they placed in this session."""
    numbers = list(session.get(ORDERS_SESSION_KEY, []))
    numbers.append(order.number)
    session[ORDERS_SESSION_KEY] = numbers[-50:]


# --- stock transfers (the internal API: the orders service's sale allocation) --------


@dataclass(frozen=True)
class TransferOutcome:
    transfer: StockTransfer
    # False when transfer_id was already applied and this is its replay.
    created: bool


def _transfer_replay(
    existing: StockTransfer, *, sku: str, units: int
) -> TransferOutcome:
    if existing.sku != sku or existing.units != units:
        raise TransferConflict(
            f"Transfer {existing.transfer_id!r} was already made with "
            f"{existing.units:+d} × {existing.sku}."
        )
    return TransferOutcome(transfer=existing, created=False)


def stock_transfer(*, transfer_id: str, sku: str, units: int) -> TransferOutcome:
    """Move `units` of a product's stock out of the shop (> 0) or back into it (< 0).

    Idempotent on transfer_id: a replay with the same SKU and units answers the first
    result, anything else is a TransferConflict. The product row is locked, so a
    transfer and a buy-now never both take the last unit; stock never goes below 0.
    """
    existing = StockTransfer.objects.filter(transfer_id=transfer_id).first()
    if existing is not None:
        return _transfer_replay(existing, sku=sku, units=units)
    try:
        with transaction.atomic():
            product = Product.objects.select_for_update().filter(sku=sku).first()
            if product is None:
                raise ProductNotFound(f"No product has the SKU {sku!r}.")
            if product.stock - units < 0:
                raise InsufficientStock(
                    f"Only {product.stock} × {product.sku} in stock; "
                    f"cannot take {units}."
                )
            product.stock -= units
            product.save(update_fields=["stock", "updated_at"])
            transfer = StockTransfer.objects.create(
                transfer_id=transfer_id,
                product=product,
                sku=sku,
                units=units,
                stock_after=product.stock,
            )
    except IntegrityError:
        # The same transfer_id committed concurrently: answer with its row.
        existing = StockTransfer.objects.filter(transfer_id=transfer_id).first()
        if existing is None:
            raise
        return _transfer_replay(existing, sku=sku, units=units)
    return TransferOutcome(transfer=transfer, created=True)


def product_sale_mark(*, sku: str, sale_url: str) -> Product:
    """Mark a product as sold by the orders service's sale at `sale_url` ("": not).

    The sale marks it when it opens and clears the mark when it closes; meanwhile
    the legacy basket and checkout refuse the product and point to the sale.
    """
    product = Product.objects.filter(sku=sku).first()
    if product is None:
        raise ProductNotFound(f"No product has the SKU {sku!r}.")
    product.sale_url = sale_url
    product.save(update_fields=["sale_url", "updated_at"])
    return product


@dataclass(frozen=True)
class LevelOutcome:
    """The stock of `sku` is now `stock_after`; `transfer` records the difference."""

    sku: str
    stock_after: int
    # None when the stock already was at that level (nothing moved, nothing written).
    transfer: StockTransfer | None
    created: bool


def stock_level_set(*, transfer_id: str, sku: str, stock: int) -> LevelOutcome:
    """Bring a product's stock to `stock`, recorded as a stock transfer of the change.

    What resets the shop for a load test: the difference goes into the transfer ledger
    like any other stock movement (units > 0 taken out, < 0 put back), so the ledger
    stays complete and a replay of `transfer_id` answers its first result.
    """
    existing = StockTransfer.objects.filter(transfer_id=transfer_id).first()
    if existing is not None:
        return _level_replay(existing, sku=sku, stock=stock)
    try:
        with transaction.atomic():
            product = Product.objects.select_for_update().filter(sku=sku).first()
            if product is None:
                raise ProductNotFound(f"No product has the SKU {sku!r}.")
            units = product.stock - stock
            if units == 0:
                return LevelOutcome(sku, stock, None, created=False)
            product.stock = stock
            product.save(update_fields=["stock", "updated_at"])
            transfer = StockTransfer.objects.create(
                transfer_id=transfer_id,
                product=product,
                sku=sku,
                units=units,
                stock_after=stock,
            )
    except IntegrityError:
        existing = StockTransfer.objects.filter(transfer_id=transfer_id).first()
        if existing is None:
            raise
        return _level_replay(existing, sku=sku, stock=stock)
    return LevelOutcome(sku, stock, transfer, created=True)


def _level_replay(existing: StockTransfer, *, sku: str, stock: int) -> LevelOutcome:
    if existing.sku != sku or existing.stock_after != stock:
        raise TransferConflict(
            f"Transfer {existing.transfer_id!r} was already made with "
            f"{existing.units:+d} × {existing.sku} (stock {existing.stock_after})."
        )
    return LevelOutcome(sku, stock, existing, created=False)
