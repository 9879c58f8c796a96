"""The hot product's pages, in the shop's look: product, buy now, the order's status.

Thin: validate with a form, call one selector or service, render. Domain errors become
a page with a precise status: 400 bad input, 401/403/404 an order you may not see,
409 sold out, 429 too many attempts (+ Retry-After), 503 busy.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from common.errors import ApplicationError, NotFound
from orders_api.models import Sale
from orders_api.ordering import selectors
from orders_api.ordering.clients import (
    client_key,
    idempotency_client,
    session_client_mint,
    session_orders,
    session_remember_order,
)
from orders_api.ordering.forms import BuyNowForm
from orders_api.ordering.idempotency import fingerprint_of
from orders_api.ordering.intake import IdempotencyClaim, order_submit
from orders_api.ordering.presentation import order_links, order_state
from orders_api.sales import selectors as sale_selectors
from orders_api.web.cross_origin import same_origin_or_csrf_token
from orders_api.web.errors import error_page


class SeeOther(HttpResponseRedirect):
    status_code = 303


def _sale_or_404(category: str, slug: str) -> Sale:
    # Every buyer's page view and buy reads it: uncached, a sixth of the service's
    # CPU in a sale.
    sale = sale_selectors.sale_current_open_cached(slug=slug)
    if sale is None or sale.category_slug != category:
        raise NotFound("There is no sale of that product here.")
    return sale


def _product_page(
    request: HttpRequest,
    sale: Sale,
    *,
    form: BuyNowForm | None = None,
    error: ApplicationError | None = None,
    status: int = 200,
) -> HttpResponse:
    remaining = sale_selectors.sale_remaining(sale=sale)
    form = form or BuyNowForm(initial={"idempotency_key": uuid.uuid4().hex})
    response = render(
        request,
        "orders_api/product.html",
        {
            "sale": sale,
            "remaining": remaining,
            "form": form,
            "error": error.detail if error else "",
            "max_quantity": form.max_quantity,
        },
        status=error.status_code if error else status,
    )
    if error is not None:
        for name, value in error.headers.items():
            response[name] = value
    return response


@require_safe
def product_page(request: HttpRequest, category: str, slug: str) -> HttpResponse:
    try:
        sale = _sale_or_404(category, slug)
    except ApplicationError as error:
        return error_page(request, error)
    session_client_mint(request)
    return _product_page(request, sale)


@require_POST
@same_origin_or_csrf_token
def product_buy(request: HttpRequest, category: str, slug: str) -> HttpResponse:
    try:
        sale = _sale_or_404(category, slug)
    except ApplicationError as error:
        return error_page(request, error)
    form = BuyNowForm(request.POST)
    if not form.is_valid():
        return _product_page(request, sale, form=form, status=400)
    data = form.cleaned_data
    try:
        stored = order_submit(
            slug=sale.slug,
            quantity=data["quantity"],
            email=data["email"],
            client=client_key(request),
            traceparent=request.headers.get("traceparent"),
            idempotency=_idempotency_claim(request, sale=sale, data=data),
        ).response
    except ApplicationError as error:
        return _product_page(request, sale, form=form, error=error)
    if stored.status != 202:
        # A replayed refusal (sold out): show it again.
        refusal = ApplicationError(stored.body.get("detail", "Not ordered."))
        refusal.status_code = stored.status
        return _product_page(request, sale, form=form, error=refusal)
    session_remember_order(request, stored.body["id"])
    return SeeOther(
        reverse(
            "orders:order-page",
            kwargs={"category": category, "slug": slug, "order_id": stored.body["id"]},
        )
    )


def _idempotency_claim(
    request: HttpRequest, *, sale: Sale, data: dict[str, Any]
) -> IdempotencyClaim | None:
    """The form's hidden key: a double-click or a resubmitted POST orders once.
    The key is the session's (minted by the product page), else the address's."""
    if not data["idempotency_key"]:
        return None
    return IdempotencyClaim(
        scope=f"form {sale.slug}",
        client=idempotency_client(request, secret=None),
        key=data["idempotency_key"],
        fingerprint=fingerprint_of(
            method="POST",
            path=request.path,
            payload={"quantity": data["quantity"], "email": data["email"]},
        ),
    )


@require_safe
def order_page(
    request: HttpRequest, category: str, slug: str, order_id: uuid.UUID
) -> HttpResponse:
    token = request.GET.get("token")
    try:
        order = selectors.order_get_visible(
            order_id=order_id, token=token, session_orders=session_orders(request)
        )
    except ApplicationError as error:
        return error_page(request, error)
    links = order_links(order=order, token=token)
    return render(
        request,
        "orders_api/order.html",
        {
            "order": order,
            "sale": order.sale,
            "ws_url": links["ws_url"],
            "by_token": bool(token) and str(order.pk) not in session_orders(request),
            "state": order_state(order=order),
        },
    )
