"""Every page of the shop renders, with the content a customer came for."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string
from django.test import Client

from shop.catalogue import CATEGORIES
from shop.models import Order, OrderLine, Product

pytestmark = pytest.mark.django_db


def text(response) -> str:
    return response.content.decode()


def test_root_redirects_to_the_shop(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/shop/"


def test_home_shows_the_sale_featured_products_and_categories(
    client: Client, muskie: Product
) -> None:
    response = client.get("/shop/")

    assert response.status_code == 200
    page = text(response)
    assert "Flash sale" in page
    assert "Muskie Casting Rod" in page
    assert "$149.99" in page
    assert 'href="/shop/rods/muskie-casting-rod/"' in page
    assert "Staff picks" in page
    for category in CATEGORIES:
        assert f'href="/shop/{category.slug}/"' in page
    assert "/static/common/site.css" in page


@pytest.mark.parametrize("category", [c.slug for c in CATEGORIES])
def test_each_category_lists_its_products(
    client: Client, catalogue: None, category: str
) -> None:
    response = client.get(f"/shop/{category}/")

    assert response.status_code == 200
    products = list(Product.objects.filter(category__slug=category))
    assert len(products) >= 3
    for product in products:
        assert product.name.replace("'", "&#x27;") in text(response)
        assert product.get_absolute_url() in text(response)


def test_muskie_page_shows_price_stock_and_both_forms(
    client: Client, muskie: Product
) -> None:
    response = client.get("/shop/rods/muskie-casting-rod/")

    assert response.status_code == 200
    page = text(response)
    assert "<h1>Muskie Casting Rod</h1>" in page
    assert "$149.99" in page
    assert "In stock" in page
    assert 'action="/shop/rods/muskie-casting-rod/buy/"' in page
    assert 'action="/basket/add/"' in page
    assert 'name="product" value="ROD-MUSKIE"' in page
    assert 'name="email"' in page  # anonymous buyers say where the receipt goes
    assert "/static/shop/img/muskie-casting-rod.svg" in page


def test_tourney_page_renders(client: Client, tourney: Product) -> None:
    response = client.get("/shop/rods/tourney-casting-rod/")

    assert response.status_code == 200
    assert "Tourney Casting Rod" in text(response)
    assert "$49.99" in text(response)


@pytest.mark.parametrize(
    ("stock", "label"), [(500, "In stock"), (7, "Only 7 left"), (0, "Sold out")]
)
def test_product_page_says_how_much_is_left(
    client: Client, muskie: Product, stock: int, label: str
) -> None:
    Product.objects.filter(pk=muskie.pk).update(stock=stock)

    response = client.get(muskie.get_absolute_url())

    assert response.status_code == 200
    assert label in text(response)
    assert ("Buy now</button>" in text(response)) is (stock > 0)


def test_signed_in_buyer_is_not_asked_for_an_email(
    client: Client, muskie: Product, django_user_model: type[User]
) -> None:
    user = django_user_model.objects.create_user("angler", "angler@example.com", "pw")
    client.force_login(user)

    response = client.get(muskie.get_absolute_url())

    assert 'name="email"' not in text(response)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("muskie", "Muskie Casting Rod"),
        ("crankbait", "Square-Bill Silent Crankbait"),
        ("ROD-TOURNEY", "Tourney Casting Rod"),
        ("waders", "Hip Waders"),
    ],
)
def test_search_finds_products(
    client: Client, catalogue: None, query: str, expected: str
) -> None:
    response = client.get("/search/", {"q": query})

    assert response.status_code == 200
    assert expected in text(response)


def test_search_miss_says_so(client: Client, catalogue: None) -> None:
    response = client.get("/search/", {"q": "chainsaw"})

    assert response.status_code == 200
    assert "No products match" in text(response)
    assert list(response.context["results"]) == []


def test_empty_search_invites_a_query(client: Client, catalogue: None) -> None:
    response = client.get("/search/")

    assert response.status_code == 200
    assert "Search the shop" in text(response)


def test_empty_basket_and_checkout_render(client: Client, catalogue: None) -> None:
    basket = client.get("/basket/")
    checkout = client.get("/basket/checkout")

    assert basket.status_code == 200
    assert "Your basket is empty" in text(basket)
    assert checkout.status_code == 200
    assert "nothing to check out" in text(checkout)


def test_checkout_prefills_a_signed_in_buyers_email(
    client: Client, crankbait: Product, django_user_model: type[User]
) -> None:
    user = django_user_model.objects.create_user("angler", "angler@example.com", "pw")
    client.force_login(user)
    client.post("/basket/add/", {"product": crankbait.sku, "quantity": 2})

    response = client.get("/basket/checkout")

    assert response.status_code == 200
    assert 'value="angler@example.com"' in text(response)
    assert "Place order" in text(response)
    assert "$12.78" in text(response)


def test_auth_pages_render(client: Client, catalogue: None) -> None:
    login = client.get("/accounts/login/")
    signup = client.get("/accounts/signup/")

    assert login.status_code == 200
    assert 'name="password"' in text(login)
    assert signup.status_code == 200
    assert 'name="email"' in text(signup)
    assert 'name="password2"' in text(signup)


def test_signup_creates_an_account_and_signs_in(
    client: Client, catalogue: None
) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "username": "pike_hunter",
            "email": "pike@example.com",
            "password1": "a long river walk 42",
            "password2": "a long river walk 42",
        },
    )

    assert response.status_code == 303
    user = User.objects.get(username="pike_hunter")
    assert user.email == "pike@example.com"
    assert client.get("/accounts/orders/").status_code == 200


def test_login_and_logout(
    client: Client, catalogue: None, django_user_model: type[User]
) -> None:
    django_user_model.objects.create_user("angler", "angler@example.com", "s3cret-pw")

    login = client.post(
        "/accounts/login/", {"username": "angler", "password": "s3cret-pw"}
    )
    assert login.status_code == 302
    assert login["Location"] == "/shop/"
    assert "Sign out" in text(client.get("/shop/"))

    logout = client.post("/accounts/logout/")
    assert logout.status_code == 302
    assert "Sign in" in text(client.get("/shop/"))


def test_my_orders_needs_an_account(client: Client, catalogue: None) -> None:
    response = client.get("/accounts/orders/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/accounts/orders/"


def _order_for(user: User | None, product: Product) -> Order:
    order = Order.objects.create(
        number="LF-TESTTEST",
        user=user,
        email="angler@example.com",
        status=Order.Status.FULFILLED,
        total=Decimal("149.99"),
        warehouse_ref="77",
        processing_ms=420,
    )
    OrderLine.objects.create(
        order=order,
        product=product,
        sku=product.sku,
        name=product.name,
        unit_price=product.price,
        quantity=1,
    )
    return order


def test_my_orders_and_order_page_for_a_signed_in_buyer(
    client: Client, muskie: Product, django_user_model: type[User]
) -> None:
    user = django_user_model.objects.create_user("angler", "angler@example.com", "pw")
    order = _order_for(user, muskie)
    client.force_login(user)

    orders = client.get("/accounts/orders/")
    detail = client.get(f"/orders/{order.number}/")

    assert orders.status_code == 200
    assert "LF-TESTTEST" in text(orders)
    assert "$149.99" in text(orders)
    assert detail.status_code == 200
    assert "It took 0.42 seconds to process your order" in text(detail)
    assert "Muskie Casting Rod" in text(detail)


def test_an_order_is_hidden_from_other_visitors(
    client: Client, muskie: Product, django_user_model: type[User]
) -> None:
    owner = django_user_model.objects.create_user("owner", "o@example.com", "pw")
    order = _order_for(owner, muskie)

    assert client.get(f"/orders/{order.number}/").status_code == 404
    client.force_login(django_user_model.objects.create_user("other", "x@e.com", "pw"))
    assert client.get(f"/orders/{order.number}/").status_code == 404


def test_admin_login_renders(client: Client, db: None) -> None:
    response = client.get("/admin/login/")

    assert response.status_code == 200


def test_admin_lists_catalogue_and_orders(
    client: Client, muskie: Product, django_user_model: type[User]
) -> None:
    admin = django_user_model.objects.create_superuser("boss", "b@example.com", "pw")
    order = _order_for(None, muskie)
    client.force_login(admin)

    assert "ROD-MUSKIE" in text(client.get("/admin/shop/product/?q=muskie"))
    assert client.get("/admin/shop/category/").status_code == 200
    change = client.get(f"/admin/shop/order/{order.pk}/change/")
    assert change.status_code == 200
    assert "Muskie Casting Rod" in text(change)
    assert client.get("/admin/shop/order/add/").status_code == 403


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/static/common/site.css", "text/css"),
        ("/static/shop/img/muskie-casting-rod.svg", "image/svg+xml"),
        ("/static/shop/img/logo.svg", "image/svg+xml"),
    ],
)
def test_static_files_are_served_by_whitenoise(
    client: Client, path: str, content_type: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)


def test_unknown_pages_get_the_shops_404(client: Client, catalogue: None) -> None:
    response = client.get("/shop/rods/no-such-rod/")

    assert response.status_code == 404
    assert "That one got away" in text(response)
    assert "lee<span>.fishing</span>" in text(response)


def test_the_500_page_renders_without_a_request() -> None:
    # Django renders 500.html with no context processors: it must not need them.
    page = render_to_string("500.html")

    assert "Our line snapped" in page
