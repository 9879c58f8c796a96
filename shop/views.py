"""The shop's pages. Thin: validate with a form, call one selector or service, render.

Domain errors (shop.exceptions) become precise HTTP answers here: 400 for bad input,
404 for unknown things, 409 when stock ran out, 503 (+ Retry-After) when the
warehouse could not take the order. In every error case nothing was ordered.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import (
    require_http_methods,
    require_POST,
    require_safe,
)

from common.cache_control import cache_public
from common.health import database_ping
from shop import selectors, services
from shop.exceptions import ShopError
from shop.forms import (
    BasketAddForm,
    BasketUpdateForm,
    BuyNowForm,
    CheckoutForm,
    SearchForm,
    SignUpForm,
)
from shop.models import Product

# Catalogue pages are the same for every visitor without a session: a cache may keep
# them a minute (a visitor with a basket, or a page with a form, gets no-store).
CATALOGUE_MAX_AGE = 60


class SeeOther(HttpResponseRedirect):
    """After a successful POST: the browser GETs the next page (no resubmission)."""

    status_code = 303


def _error_response(
    request: HttpRequest, template: str, context: dict[str, Any], error: ShopError
) -> HttpResponse:
    response = render(request, template, {**context, "error": error.detail})
    response.status_code = error.status_code
    for name, value in error.headers.items():
        response[name] = value
    return response


# --- health --------------------------------------------------------------------------


@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    """The probe compose runs: a `SELECT 1`, no page rendered, never traced."""
    if database_ping():
        return JsonResponse({"status": "ok"})
    return JsonResponse(
        {
            "status": "unavailable",
            "error": "database_unavailable",
            "detail": "The database does not answer.",
        },
        status=503,
    )


# --- catalogue -----------------------------------------------------------------------


@require_safe
@cache_public(CATALOGUE_MAX_AGE)
def home(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "shop/home.html",
        {
            "sale_product": selectors.product_flash_sale(),
            "featured": selectors.product_featured(),
            "categories": selectors.category_list_with_products(),
        },
    )


@require_safe
@cache_public(CATALOGUE_MAX_AGE)
def category_detail(request: HttpRequest, category: str) -> HttpResponse:
    found = selectors.category_get(slug=category)
    return render(
        request,
        "shop/category.html",
        {"category": found, "products": selectors.product_list(category=found)},
    )


def _product_page(
    request: HttpRequest,
    product: Product,
    *,
    buy_form: BuyNowForm | None = None,
    error: ShopError | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "product": product,
        "category": product.category,
        "buy_form": buy_form or BuyNowForm(user=request.user),
        "max_quantity": settings.MAX_QUANTITY_PER_LINE,
    }
    if error is not None:
        return _error_response(request, "shop/product.html", context, error)
    return render(request, "shop/product.html", context, status=status)


@require_safe
@cache_public(CATALOGUE_MAX_AGE)
def product_detail(request: HttpRequest, category: str, slug: str) -> HttpResponse:
    product = selectors.product_get(category_slug=category, slug=slug)
    return _product_page(request, product)


@require_POST
def product_buy(request: HttpRequest, category: str, slug: str) -> HttpResponse:
    product = selectors.product_get(category_slug=category, slug=slug)
    form = BuyNowForm(request.POST, user=request.user)
    if not form.is_valid():
        return _product_page(request, product, buy_form=form, status=400)
    try:
        order = services.order_place(
            items=[services.OrderItem(product.pk, form.cleaned_data["quantity"])],
            email=form.order_email(),
            user=request.user,
            basket=False,
        )
    except ShopError as error:
        # Show the stock as it is now, not as it was before someone else bought it.
        product = selectors.product_get(category_slug=category, slug=slug)
        return _product_page(request, product, buy_form=form, error=error)
    services.order_remember(session=request.session, order=order)
    return SeeOther(order.get_absolute_url())


@require_safe
@cache_public(CATALOGUE_MAX_AGE)
def search(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET)
    if not form.is_valid():
        return render(
            request,
            "shop/search.html",
            {"form": form, "query": "", "results": None},
            status=400,
        )
    query = form.cleaned_data["q"]
    results = selectors.product_search(query=query) if query else None
    return render(
        request, "shop/search.html", {"form": form, "query": query, "results": results}
    )


# --- basket and checkout -------------------------------------------------------------


def _basket_page(
    request: HttpRequest, *, error: ShopError | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "basket": selectors.basket_get(session=request.session),
        "max_quantity": settings.MAX_QUANTITY_PER_LINE,
    }
    if error is not None:
        return _error_response(request, "shop/basket.html", context, error)
    return render(request, "shop/basket.html", context, status=status)


def _form_error(form: Any) -> ShopError:
    """The first message of an invalid form, as a 400 domain error."""
    for name, errors in form.errors.items():
        field = form.fields.get(name)
        label = (field.label or name.capitalize()) if field is not None else ""
        return ShopError(f"{label}: {errors[0]}" if label else errors[0])
    return ShopError("Please check the form.")


@require_safe
def basket_detail(request: HttpRequest) -> HttpResponse:
    return _basket_page(request)


def _basket_form_product(form: BasketAddForm | BasketUpdateForm) -> Product | None:
    """Validate the form; a SKU that names no product is a 404, whatever else."""
    form.is_valid()
    sku = form.cleaned_data.get("product")
    return selectors.product_get_by_sku(sku=sku) if sku else None


@require_POST
def basket_add(request: HttpRequest) -> HttpResponse:
    form = BasketAddForm(request.POST)
    product = _basket_form_product(form)
    if product is None or form.errors:
        return _basket_page(request, error=_form_error(form))
    try:
        services.basket_add(
            session=request.session,
            product=product,
            quantity=form.cleaned_data["quantity"],
        )
    except ShopError as error:
        return _basket_page(request, error=error)
    messages.success(request, f"Added {product.name} to your basket.")
    return SeeOther(reverse("shop:basket"))


@require_POST
def basket_update(request: HttpRequest) -> HttpResponse:
    form = BasketUpdateForm(request.POST)
    product = _basket_form_product(form)
    if product is None or form.errors:
        return _basket_page(request, error=_form_error(form))
    quantity = form.cleaned_data["quantity"]
    try:
        services.basket_update(
            session=request.session, product_id=product.pk, quantity=quantity
        )
    except ShopError as error:
        return _basket_page(request, error=error)
    if quantity == 0:
        messages.info(request, f"Removed {product.name} from your basket.")
    return SeeOther(reverse("shop:basket"))


def _checkout_page(
    request: HttpRequest,
    form: CheckoutForm,
    *,
    error: ShopError | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {"form": form, "basket": selectors.basket_get(session=request.session)}
    if error is not None:
        return _error_response(request, "shop/checkout.html", context, error)
    return render(request, "shop/checkout.html", context, status=status)


@require_http_methods(["GET", "POST"])
def checkout(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        email = request.user.email if request.user.is_authenticated else ""
        return _checkout_page(request, CheckoutForm(initial={"email": email}))
    form = CheckoutForm(request.POST)
    if not form.is_valid():
        return _checkout_page(request, form, status=400)
    try:
        order = services.order_place(
            items=services.basket_items(session=request.session),
            email=form.cleaned_data["email"],
            user=request.user,
        )
    except ShopError as error:
        return _checkout_page(request, form, error=error)
    services.basket_clear(session=request.session)
    services.order_remember(session=request.session, order=order)
    return SeeOther(order.get_absolute_url())


# --- orders and accounts -------------------------------------------------------------


@require_safe
def order_detail(request: HttpRequest, number: str) -> HttpResponse:
    order = selectors.order_get_visible(
        number=number, user=request.user, session=request.session
    )
    return render(request, "shop/order.html", {"order": order})


@require_safe
@login_required
def my_orders(request: HttpRequest) -> HttpResponse:
    orders = selectors.order_list_for_user(user=request.user)
    return render(request, "shop/my_orders.html", {"orders": orders})


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return HttpResponseRedirect(settings.LOGIN_REDIRECT_URL)
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome aboard, {user.get_username()}!")
            return SeeOther(settings.LOGIN_REDIRECT_URL)
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW: a friendly 403 in the shop's look (nothing was done)."""
    return render(request, "shop/csrf_failure.html", {"reason": reason}, status=403)
