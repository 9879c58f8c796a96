"""The shop's internal JSON API, for other services only (never routed by the edge).

    POST /internal/stock/transfers/  {transfer_id, sku, units}  take or give back stock
    POST /internal/stock/levels/     {transfer_id, sku, stock}  set the stock (a reset)
    GET  /internal/products/<sku>/                             a product snapshot
    PUT  /internal/products/<sku>/sale/  {sale_url}             a sale of it is open
    DELETE /internal/products/<sku>/sale/                      the sale closed
    GET  /internal/orders/?sku=&since=[&after=&limit=]          orders of one product

Every call carries `Authorization: Bearer <INTERNAL_API_TOKEN>`: none (or not Bearer)
is 401, a wrong token is 403. Errors are `{"error": <code>, "detail": <message>}`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt

from common.auth import bearer_token_check
from common.errors import (
    MalformedJson,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
    json_view,
)
from common.paging import Page, next_after, page_parse
from shop import selectors, services
from shop.exceptions import ShopError
from shop.models import Order, Product, StockTransfer

TRANSFER_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_TRANSFER_UNITS = 1_000_000
_TRANSFER_KEYS = frozenset({"transfer_id", "sku", "units"})
_LEVEL_KEYS = frozenset({"transfer_id", "sku", "stock"})
MAX_ORDERS_PER_PAGE = 5000

View = Callable[..., HttpResponse]


def _token_check(request: HttpRequest) -> None:
    bearer_token_check(
        request=request, expected=settings.INTERNAL_API_TOKEN, realm="shop-internal"
    )


def internal_api(*methods: str) -> Callable[[View], View]:
    """Token first, then the method (405), then the view; ShopErrors become JSON."""

    def decorate(view: View) -> View:
        return csrf_exempt(json_view(*methods, auth=_token_check)(view))

    return decorate


def _json_object(request: HttpRequest) -> dict[str, Any]:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send Content-Type: application/json.")
    try:
        data = json.loads(request.body)
    except RequestDataTooBig:
        raise PayloadTooLarge("The body is too large.") from None
    except (ValueError, RecursionError):
        raise MalformedJson("The body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ShopError("The body must be a JSON object.")
    return data


def _keys_check(data: dict[str, Any], expected: frozenset[str]) -> None:
    unknown = sorted(set(data) - expected)
    missing = sorted(expected - set(data))
    if unknown or missing:
        parts = [f"unknown: {', '.join(unknown)}"] if unknown else []
        parts += [f"missing: {', '.join(missing)}"] if missing else []
        raise ShopError(f"Keys {'; '.join(parts)}.")


def _id_and_sku(data: dict[str, Any]) -> tuple[str, str]:
    transfer_id, sku = data["transfer_id"], data["sku"]
    if not isinstance(transfer_id, str) or not TRANSFER_ID_PATTERN.fullmatch(
        transfer_id
    ):
        raise ShopError("transfer_id must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
    if not isinstance(sku, str) or not 1 <= len(sku) <= 32:
        raise ShopError("sku must be a string of 1 to 32 characters.")
    return transfer_id, sku


def _transfer_parse(data: dict[str, Any]) -> tuple[str, str, int]:
    _keys_check(data, _TRANSFER_KEYS)
    transfer_id, sku = _id_and_sku(data)
    units = data["units"]
    if (
        isinstance(units, bool)
        or not isinstance(units, int)
        or units == 0
        or abs(units) > MAX_TRANSFER_UNITS
    ):
        raise ShopError(
            f"units must be a non-zero whole number from -{MAX_TRANSFER_UNITS} "
            f"to {MAX_TRANSFER_UNITS}."
        )
    return transfer_id, sku, units


def _transfer_json(transfer: StockTransfer) -> dict[str, Any]:
    return {
        "transfer_id": transfer.transfer_id,
        "sku": transfer.sku,
        "units": transfer.units,
        "stock_after": transfer.stock_after,
        "created_at": transfer.created_at.isoformat(),
    }


@internal_api("POST")
def stock_transfer_api(request: HttpRequest) -> HttpResponse:
    transfer_id, sku, units = _transfer_parse(_json_object(request))
    outcome = services.stock_transfer(transfer_id=transfer_id, sku=sku, units=units)
    if outcome.created:
        return JsonResponse(_transfer_json(outcome.transfer), status=201)
    return JsonResponse(
        _transfer_json(outcome.transfer),
        status=200,
        headers={"Idempotent-Replayed": "true"},
    )


def _product_json(product: Product) -> dict[str, Any]:
    return {
        "sku": product.sku,
        "name": product.name,
        "slug": product.slug,
        "price": str(product.price),
        "description": product.description,
        "image": product.image,
        "category": {"name": product.category.name, "slug": product.category.slug},
        "stock": product.stock,
        "sale_url": product.sale_url,
    }


@internal_api("GET")
def product_detail_api(request: HttpRequest, sku: str) -> HttpResponse:
    product = selectors.product_find_by_sku(sku=sku)
    if product is None:
        raise NotFound(f"No product has the SKU {sku!r}.")
    return JsonResponse(_product_json(product))


_SALE_URL = re.compile(r"(/|https?://)[^\s<>\"']{0,190}")


@internal_api("PUT", "DELETE")
def product_sale_api(request: HttpRequest, sku: str) -> HttpResponse:
    """While the orders service sells the product, the basket and checkout refuse it."""
    sale_url = ""
    if request.method == "PUT":
        data = _json_object(request)
        _keys_check(data, frozenset({"sale_url"}))
        sale_url = data["sale_url"]
        if not isinstance(sale_url, str) or not _SALE_URL.fullmatch(sale_url):
            raise ShopError("sale_url must be a path or an http(s) URL.")
    product = services.product_sale_mark(sku=sku, sale_url=sale_url)
    return JsonResponse({"sku": product.sku, "sale_url": product.sale_url})


def _level_parse(data: dict[str, Any]) -> tuple[str, str, int]:
    _keys_check(data, _LEVEL_KEYS)
    transfer_id, sku = _id_and_sku(data)
    stock = data["stock"]
    if (
        isinstance(stock, bool)
        or not isinstance(stock, int)
        or not 0 <= stock <= MAX_TRANSFER_UNITS
    ):
        raise ShopError(f"stock must be a whole number from 0 to {MAX_TRANSFER_UNITS}.")
    return transfer_id, sku, stock


@internal_api("POST")
def stock_level_api(request: HttpRequest) -> HttpResponse:
    """Set a product's stock (a load test's reset); the change is a stock transfer."""
    transfer_id, sku, stock = _level_parse(_json_object(request))
    outcome = services.stock_level_set(transfer_id=transfer_id, sku=sku, stock=stock)
    if outcome.transfer is None:
        body: dict[str, Any] = {
            "transfer_id": None,
            "sku": outcome.sku,
            "units": 0,
            "stock_after": outcome.stock_after,
            "created_at": None,
        }
        return JsonResponse(body, status=200)
    if outcome.created:
        return JsonResponse(_transfer_json(outcome.transfer), status=201)
    return JsonResponse(
        _transfer_json(outcome.transfer),
        status=200,
        headers={"Idempotent-Replayed": "true"},
    )


def _order_list_parse(query: QueryDict) -> tuple[str, Page]:
    page = page_parse(
        query, max_limit=MAX_ORDERS_PER_PAGE, other_params=frozenset({"sku"})
    )
    sku = query.get("sku", "")
    if not 1 <= len(sku) <= 32:
        raise ShopError("sku must be a string of 1 to 32 characters.")
    return sku, page


def _order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.pk,
        "number": order.number,
        "email": order.email,
        "status": order.status,
        "created_at": order.created_at.isoformat(),
        "lines": [
            {"sku": line.sku, "quantity": line.quantity} for line in order.lines.all()
        ],
    }


@internal_api("GET")
def order_list_api(request: HttpRequest) -> HttpResponse:
    """Orders with a line of one product since a moment, a page at a time (by id)."""
    sku, page = _order_list_parse(request.GET)
    orders = selectors.order_list_by_sku(
        sku=sku, since=page.since, after_id=page.after, limit=page.limit
    )
    return JsonResponse(
        {
            "orders": [_order_json(order) for order in orders],
            "next_after": next_after([order.pk for order in orders], page=page),
        }
    )
