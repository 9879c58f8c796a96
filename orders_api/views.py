"""The hot product's pages, in the shop's look: product, buy now, status, sale board.

Thin: validate with a form, call one selector or service, render. Domain errors become
a page with a precise status: 400 bad input, 401/403/404 an order you may not see,
409 sold out, 429 too many attempts (+ Retry-After), 503 busy.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe

from orders_api import admission, events, selectors, services
from orders_api.clients import client_key, session_orders, session_remember_order
from orders_api.exceptions import (
    ApplicationError,
    NotFound,
    RateLimited,
)
from orders_api.forms import BuyNowForm
from orders_api.idempotency import StoredResponse, fingerprint_of, idempotent_call
from orders_api.models import Sale


class SeeOther(HttpResponseRedirect):
    status_code = 303


def _sale_or_404(category: str, slug: str) -> Sale:
    # Every buyer's page view and buy reads it: uncached, a sixth of the service's
    # CPU in a sale.
    sale = selectors.sale_current_open_cached(slug=slug)
    if sale is None or sale.category_slug != category:
        raise NotFound("There is no sale of that product here.")
    return sale


def error_page(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    response = render(
        request,
        "orders_api/error.html",
        {"status": error.status_code, "message": error.detail, "code": error.code},
        status=error.status_code,
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


def _product_page(
    request: HttpRequest,
    sale: Sale,
    *,
    form: BuyNowForm | None = None,
    error: ApplicationError | None = None,
    status: int = 200,
) -> HttpResponse:
    remaining = selectors.sale_remaining(sale=sale)
    form = form or BuyNowForm(initial={"idempotency_key": uuid.uuid4().hex})
    response = render(
        request,
        "orders_api/product.html",
        {
            "sale": sale,
            "remaining": remaining,
            "form": form,
            "error": error.detail if error else "",
            "max_quantity": form.fields["quantity"].max_value,
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
    return _product_page(request, sale)


@require_POST
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
        retry_after = admission.rate_limit_hit(client=client_key(request))
        if retry_after:
            raise RateLimited(
                "Too many orders from you at once; try again shortly.",
                retry_after=retry_after,
            )
        stored = _place(request, sale=sale, data=data)
    except ApplicationError as error:
        return _product_page(request, sale, form=form, error=error)
    if stored.status != 202:
        # A replayed refusal (sold out): show it again.
        error = ApplicationError(stored.body.get("detail", "Not ordered."))
        error.status_code = stored.status
        return _product_page(request, sale, form=form, error=error)
    session_remember_order(request, stored.body["id"])
    return SeeOther(
        reverse(
            "orders:order-page",
            kwargs={"category": category, "slug": slug, "order_id": stored.body["id"]},
        )
    )


def _place(request: HttpRequest, *, sale: Sale, data: dict[str, Any]) -> StoredResponse:
    trace_id = events.trace_id_of_request(request.headers.get("traceparent"))

    def place(record: Any) -> StoredResponse:
        placed = services.order_place(
            slug=sale.slug,
            quantity=data["quantity"],
            email=data["email"],
            trace_id=trace_id,
            idempotency=record,
        )
        return StoredResponse(
            202, services.order_accepted_body(order=placed.order, token=placed.token)
        )

    if not data["idempotency_key"]:
        return place(None)
    stored, _ = idempotent_call(
        scope=f"form {sale.slug}",
        key=data["idempotency_key"],
        fingerprint=fingerprint_of(
            method="POST",
            path=request.path,
            payload={"quantity": data["quantity"], "email": data["email"]},
        ),
        call=place,
    )
    return stored


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
    links = services.order_links(order=order, token=token)
    return render(
        request,
        "orders_api/order.html",
        {
            "order": order,
            "sale": order.sale,
            "ws_url": links["ws_url"],
            "by_token": bool(token) and str(order.pk) not in session_orders(request),
            "state": selectors.order_state(order=order),
        },
    )


@require_safe
def sale_board(request: HttpRequest, slug: str) -> HttpResponse:
    sale = selectors.sale_current(slug=slug)
    if sale is None:
        return error_page(request, NotFound("No sale of that product has opened."))
    return render(
        request,
        "orders_api/board.html",
        {"sale": sale, "board": selectors.sale_board(sale=sale)},
    )


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    checks = {"database": selectors.database_ping(), "redis": admission.ping()}
    ready = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks},
        status=200 if ready else 503,
    )


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(
        request,
        "orders_api/error.html",
        {
            "status": 403,
            "code": "csrf",
            "message": "Your form expired or came from elsewhere. Nothing was ordered; "
            "please reload the page and try again.",
        },
        status=403,
    )


def _handler(status: int, message: str) -> Any:
    def handler(request: HttpRequest, exception: Exception | None = None) -> Any:
        if request.path.startswith("/api/"):
            code = {400: "bad_request", 403: "forbidden", 404: "not_found"}
            return JsonResponse(
                {"error": code.get(status, "server_error"), "detail": message},
                status=status,
            )
        return render(
            request,
            "orders_api/error.html",
            {"status": status, "message": message, "code": ""},
            status=status,
        )

    return handler


bad_request = _handler(400, "That request was malformed. Nothing was ordered.")
permission_denied = _handler(403, "You may not see that.")
not_found = _handler(404, "That one got away: there is nothing here.")
server_error = _handler(500, "Something broke on our side; please try again.")
