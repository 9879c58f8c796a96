"""Legacy order placement against a real warehouse process, over real HTTP."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest
from django.db import connection

from shop.exceptions import OutOfStock, WarehouseUnavailable
from shop.models import Category, Order, OrderLine, Product
from shop.services import OrderItem, order_place
from tests.support.processes import free_port
from tests.support.stack import (
    INTERNAL_AUTH,
    INTERNAL_TOKEN,
    fulfillment_refs,
    warehouse_process,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def warehouse():
    with warehouse_process("test_shop_wh", capacity=8, handling_ms=20) as service:
        yield service


@pytest.fixture(autouse=True)
def internal_token(settings):
    """The shop sends the warehouse processes' token, read from its settings."""
    settings.INTERNAL_API_TOKEN = INTERNAL_TOKEN


@pytest.fixture
def at_warehouse(settings, warehouse):
    settings.WAREHOUSE_URL = warehouse.url
    reset = httpx.post(warehouse.url + "/stats/reset", headers=INTERNAL_AUTH)
    assert reset.status_code == 200
    return warehouse


def _rod(
    stock: int, *, slug: str = "muskie-casting-rod", sku: str = "ROD-MUSKIE"
) -> Product:
    rods, _ = Category.objects.get_or_create(slug="rods", defaults={"name": "Rods"})
    return Product.objects.create(
        category=rods,
        name=slug.replace("-", " ").title(),
        slug=slug,
        sku=sku,
        price=Decimal("149.99"),
        stock=stock,
    )


def test_an_order_is_placed_and_fulfilled_before_the_answer(at_warehouse):
    # given a rod in stock
    rod = _rod(5)
    # when a customer buys two
    order = order_place(items=[OrderItem(rod.pk, 2)], email="ann@example.com")
    # then the order exists with its line and total, stock fell, the warehouse has it
    rod.refresh_from_db()
    assert rod.stock == 3
    assert order.total == Decimal("299.98")
    assert order.lines.get().quantity == 2
    assert order.warehouse_ref
    assert order.processing_ms > 0
    assert order.number in fulfillment_refs("test_shop_wh")


def test_fifty_buyers_for_the_last_ten_rods_make_exactly_ten_orders(at_warehouse):
    # given the last 10 Muskie rods
    rod = _rod(10)
    barrier = threading.Barrier(50)

    def buy(i: int) -> str:
        barrier.wait()
        try:
            order_place(items=[OrderItem(rod.pk, 1)], email=f"buyer{i}@example.com")
            return "ok"
        except OutOfStock:
            return "sold_out"
        finally:
            connection.close()

    # when 50 threads buy one each at the same moment
    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(buy, range(50)))

    # then exactly 10 orders, stock 0 (never negative), every order fulfilled once
    assert outcomes.count("ok") == 10
    assert outcomes.count("sold_out") == 40
    rod.refresh_from_db()
    assert rod.stock == 0
    assert Order.objects.count() == 10
    assert OrderLine.objects.filter(product=rod).count() == 10
    refs = fulfillment_refs("test_shop_wh")
    numbers = set(Order.objects.values_list("number", flat=True))
    assert numbers <= set(refs)
    assert len(refs) == len(set(refs))


def test_a_shop_without_the_warehouses_token_orders_nothing(settings, at_warehouse):
    # given a rod in stock, and a shop whose INTERNAL_API_TOKEN is not the warehouse's
    rod = _rod(5)
    packed = fulfillment_refs("test_shop_wh")
    settings.INTERNAL_API_TOKEN = "not-the-warehouses-token"
    # when a customer buys one
    with pytest.raises(WarehouseUnavailable, match="HTTP 403"):
        order_place(items=[OrderItem(rod.pk, 1)], email="ann@example.com")
    # then the warehouse packed nothing and the shop ordered nothing
    rod.refresh_from_db()
    assert rod.stock == 5
    assert Order.objects.count() == 0
    assert fulfillment_refs("test_shop_wh") == packed


OTHER_ORDER = {"order_ref": "OTHER-1", "lines": [{"sku": "X", "quantity": 1}]}


def test_a_refusing_warehouse_rolls_the_whole_order_back(settings):
    # given a warehouse with room for one order, kept busy by another order
    rod = _rod(5)
    with warehouse_process("test_shop_wh_busy", capacity=1, handling_ms=1500) as busy:
        settings.WAREHOUSE_URL = busy.url
        occupier = threading.Thread(
            target=httpx.post,
            args=(busy.url + "/fulfilments/",),
            kwargs={"json": OTHER_ORDER, "headers": INTERNAL_AUTH},
        )
        occupier.start()
        _wait_until_busy(busy.url)
        # when a customer buys
        with pytest.raises(WarehouseUnavailable) as refused:
            order_place(items=[OrderItem(rod.pk, 1)], email="ann@example.com")
        occupier.join()
        refs = fulfillment_refs("test_shop_wh_busy")
    # then nothing was ordered and the stock is untouched
    assert "capacity" in refused.value.detail
    assert refused.value.retry_after >= 1
    rod.refresh_from_db()
    assert rod.stock == 5
    assert Order.objects.count() == 0
    assert refs == ["OTHER-1"]


def test_a_slow_warehouse_times_out_and_nothing_is_ordered(settings):
    rod = _rod(5)
    with warehouse_process("test_shop_wh_slow", capacity=4, handling_ms=1500) as slow:
        settings.WAREHOUSE_URL = slow.url
        settings.WAREHOUSE_TIMEOUT_SECONDS = 0.3
        with pytest.raises(WarehouseUnavailable, match="did not answer in time"):
            order_place(items=[OrderItem(rod.pk, 1)], email="ann@example.com")
    rod.refresh_from_db()
    assert rod.stock == 5
    assert Order.objects.count() == 0


def test_an_unreachable_warehouse_is_a_clear_error(settings):
    rod = _rod(5)
    settings.WAREHOUSE_URL = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(WarehouseUnavailable, match="cannot be reached"):
        order_place(items=[OrderItem(rod.pk, 1)], email="ann@example.com")
    rod.refresh_from_db()
    assert rod.stock == 5
    assert Order.objects.count() == 0


def test_buying_more_than_the_stock_is_refused_without_calling_the_warehouse(
    at_warehouse,
):
    rod = _rod(2)
    with pytest.raises(OutOfStock) as refused:
        order_place(items=[OrderItem(rod.pk, 3)], email="ann@example.com")
    assert refused.value.available == 2
    rod.refresh_from_db()
    assert rod.stock == 2
    assert httpx.get(at_warehouse.url + "/stats/").json()["fulfilled"] == 0


def _wait_until_busy(url: str) -> None:
    for _ in range(100):
        if httpx.get(url + "/stats/").json()["in_flight"] >= 1:
            return
        threading.Event().wait(0.02)
    raise AssertionError("the occupying order never reached the warehouse")
