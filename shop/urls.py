"""The shop's URLs: the workshop's own paths, so the edge router can split on them.

`/shop/rods/muskie-casting-rod/*` is the prefix the edge later sends to the new
orders service; everything else stays here.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from shop import internal_api, views

shop_patterns = [
    path("shop/", views.home, name="home"),
    path("shop/<slug:category>/", views.category_detail, name="category"),
    path("shop/<slug:category>/<slug:slug>/", views.product_detail, name="product"),
    path("shop/<slug:category>/<slug:slug>/buy/", views.product_buy, name="buy"),
    path("search/", views.search, name="search"),
    path("basket/", views.basket_detail, name="basket"),
    path("basket/add/", views.basket_add, name="basket_add"),
    path("basket/update/", views.basket_update, name="basket_update"),
    path("basket/checkout", views.checkout, name="checkout"),
    path("orders/<str:number>/", views.order_detail, name="order"),
    path("accounts/orders/", views.my_orders, name="my_orders"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/signup/", views.signup, name="signup"),
]

# For other services only (the orders service's sale allocation); token-protected.
internal_patterns = [
    path(
        "internal/stock/transfers/",
        internal_api.stock_transfer_api,
        name="stock_transfer",
    ),
    path(
        "internal/stock/levels/",
        internal_api.stock_level_api,
        name="stock_level",
    ),
    path("internal/orders/", internal_api.order_list_api, name="order_list"),
    path(
        "internal/products/<str:sku>/",
        internal_api.product_detail_api,
        name="product_snapshot",
    ),
    path(
        "internal/products/<str:sku>/sale/",
        internal_api.product_sale_api,
        name="product_sale",
    ),
]

urlpatterns = [
    path("", RedirectView.as_view(url="/shop/", permanent=False)),
    # Liveness and database, for compose's healthcheck (common/tracing: untraced).
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("", include((shop_patterns, "shop"))),
    path("", include((internal_patterns, "internal"))),
]
