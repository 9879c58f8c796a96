"""The orders service's URLs: the hot product's pages (under the shop's own paths, so
the edge can route them here), the JSON API, its schema and docs, health."""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from orders_api.ordering import apis, views
from orders_api.sales import apis as sale_apis
from orders_api.sales import views as sale_views
from orders_api.web import health

page_patterns = [
    path("shop/<slug:category>/<slug:slug>/", views.product_page, name="product"),
    path("shop/<slug:category>/<slug:slug>/buy/", views.product_buy, name="buy"),
    path(
        "shop/<slug:category>/<slug:slug>/orders/<uuid:order_id>/",
        views.order_page,
        name="order-page",
    ),
    path("sale/<slug:slug>/", sale_views.sale_board, name="board"),
    path("api/orders/", apis.OrderCreateApi.as_view(), name="order-create"),
    path(
        "api/orders/<uuid:order_id>/",
        apis.OrderDetailApi.as_view(),
        name="order-detail",
    ),
    path(
        "api/orders/<uuid:order_id>/journey/",
        apis.OrderJourneyApi.as_view(),
        name="order-journey",
    ),
    path(
        "api/sales/<slug:slug>/", sale_apis.SaleDetailApi.as_view(), name="sale-detail"
    ),
]

urlpatterns = [
    path("", include((page_patterns, "orders"))),
    # For other services only (never routed by the edge: no /internal/ behaviour).
    path(
        "internal/sales/<slug:slug>/orders/",
        sale_apis.SaleOrderListApi.as_view(),
        name="internal-sale-orders",
    ),
    # A dead letter's replay asks first (the fulfillment queue's `dlq replay`).
    path(
        "internal/orders/<str:number>/reclaim",
        apis.OrderReclaimApi.as_view(),
        name="internal-order-reclaim",
    ),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view: its script is a file of its own (?script), not inline, so
    # that the Content-Security-Policy need not allow inline scripts.
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(
            url_name="schema", template_name="orders_api/swagger_ui.html"
        ),
        name="docs",
    ),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler400 = "orders_api.web.errors.bad_request"
handler403 = "orders_api.web.errors.permission_denied"
handler404 = "orders_api.web.errors.not_found"
handler500 = "orders_api.web.errors.server_error"
