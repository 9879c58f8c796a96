"""Bad input on every form gets a precise status, and nothing is written.

None of these requests may reach the warehouse: each is refused before an order exists.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.contrib.auth.models import User
from django.test import Client

from shop.models import Order, OrderLine, Product
from tests.support.processes import free_port

pytestmark = pytest.mark.django_db

BUY = "/shop/rods/muskie-casting-rod/buy/"
GOOD = {"quantity": "1", "email": "angler@example.com"}


@pytest.fixture
def untouched(muskie: Product) -> Iterator[None]:
    """Given the seeded shop, then after the request no order and no stock moved."""
    stock_before = dict(Product.objects.values_list("sku", "stock"))
    yield
    assert Order.objects.count() == 0
    assert OrderLine.objects.count() == 0
    assert dict(Product.objects.values_list("sku", "stock")) == stock_before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({**GOOD, "quantity": "0"}, "greater than or equal to 1"),
        ({**GOOD, "quantity": "-1"}, "greater than or equal to 1"),
        ({**GOOD, "quantity": str(10**9)}, "less than or equal to 10"),
        ({**GOOD, "quantity": "abc"}, "Enter a whole number"),
        ({**GOOD, "quantity": "1.5"}, "Enter a whole number"),
        ({"email": "angler@example.com"}, "This field is required"),
        ({"quantity": "1"}, "This field is required"),
        ({**GOOD, "email": ""}, "This field is required"),
        ({**GOOD, "email": "not-an-email"}, "Enter a valid email address"),
        ({**GOOD, "email": "a@" + "b" * 300 + ".com"}, "at most 254 characters"),
    ],
    ids=[
        "qty-0",
        "qty-negative",
        "qty-huge",
        "qty-text",
        "qty-fraction",
        "qty-missing",
        "email-missing",
        "email-empty",
        "email-invalid",
        "email-too-long",
    ],
)
def test_buy_now_with_bad_input_is_400(
    client: Client, untouched: None, data: dict[str, str], message: str
) -> None:
    response = client.post(BUY, data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert "<h1>Muskie Casting Rod</h1>" in response.content.decode()


def test_buy_now_by_an_account_without_email_still_needs_one(
    client: Client, untouched: None, django_user_model: type[User]
) -> None:
    client.force_login(django_user_model.objects.create_user("noemail", "", "pw"))

    response = client.post(BUY, {"quantity": "1"})

    assert response.status_code == 400


@pytest.mark.parametrize(
    "path",
    [
        "/shop/rods/no-such-rod/buy/",
        "/shop/no-such-category/muskie-casting-rod/buy/",
        "/shop/reels/muskie-casting-rod/buy/",  # a real product in the wrong category
    ],
)
def test_buy_now_of_an_unknown_product_is_404(
    client: Client, untouched: None, path: str
) -> None:
    response = client.post(path, GOOD)

    assert response.status_code == 404
    assert "That one got away" in response.content.decode()


def test_buy_now_without_csrf_token_is_403(
    csrf_client: Client, untouched: None
) -> None:
    response = csrf_client.post(BUY, GOOD)

    assert response.status_code == 403
    assert "That form had expired" in response.content.decode()


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_an_oversize_body_is_400_not_500(
    client: Client, untouched: None, encoding: str
) -> None:
    padding = "x" * (70 * 1024)  # DATA_UPLOAD_MAX_MEMORY_SIZE is 64 KiB
    if encoding == "urlencoded":
        response = client.post(
            BUY,
            f"quantity=1&email=a%40example.com&pad={padding}",
            content_type="application/x-www-form-urlencoded",
        )
    else:
        response = client.post(BUY, {**GOOD, "pad": padding})

    assert response.status_code == 400
    assert "far too large" in response.content.decode()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_buy_now_only_accepts_post(
    client: Client, untouched: None, method: str
) -> None:
    response = getattr(client, method)(BUY)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_buying_more_than_is_left_is_409(
    client: Client, muskie: Product, untouched: None
) -> None:
    Product.objects.filter(pk=muskie.pk).update(stock=2)

    response = client.post(BUY, {**GOOD, "quantity": "3"})

    assert response.status_code == 409
    assert (
        "only 2 \N{MULTIPLICATION SIGN} Muskie Casting Rod left"
        in response.content.decode()
    )
    Product.objects.filter(pk=muskie.pk).update(stock=muskie.stock)  # for `untouched`


def test_buying_a_sold_out_product_is_409(
    client: Client, muskie: Product, untouched: None
) -> None:
    Product.objects.filter(pk=muskie.pk).update(stock=0)

    response = client.post(BUY, GOOD)

    assert response.status_code == 409
    assert "Muskie Casting Rod is sold out" in response.content.decode()
    Product.objects.filter(pk=muskie.pk).update(stock=muskie.stock)


@pytest.fixture
def warehouse_down(settings) -> None:
    """Point the shop at a port nobody listens on."""
    settings.WAREHOUSE_URL = f"http://127.0.0.1:{free_port()}"


def test_warehouse_unreachable_is_503_with_retry_after(
    client: Client, warehouse_down: None, untouched: None
) -> None:
    response = client.post(BUY, GOOD)

    assert response.status_code == 503
    assert response["Retry-After"] == "1"
    assert "Nothing was ordered" in response.content.decode()


# --- basket and checkout ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"product": "NO-SUCH-SKU", "quantity": "1"}, 404),
        ({"product": "NO-SUCH-SKU", "quantity": "abc"}, 404),
        ({"product": "ROD-MUSKIE", "quantity": "0"}, 400),
        ({"product": "ROD-MUSKIE", "quantity": "-3"}, 400),
        ({"product": "ROD-MUSKIE", "quantity": str(10**9)}, 400),
        ({"product": "ROD-MUSKIE", "quantity": "abc"}, 400),
        ({"product": "ROD-MUSKIE"}, 400),
        ({"quantity": "1"}, 400),
        ({"product": "X" * 500, "quantity": "1"}, 400),
    ],
    ids=[
        "unknown-sku",
        "unknown-sku-bad-qty",
        "qty-0",
        "qty-negative",
        "qty-huge",
        "qty-text",
        "qty-missing",
        "sku-missing",
        "sku-too-long",
    ],
)
def test_basket_add_with_bad_input(
    client: Client, untouched: None, data: dict[str, str], status: int
) -> None:
    response = client.post("/basket/add/", data)

    assert response.status_code == status
    assert client.session.get("basket", {}) == {}


@pytest.mark.parametrize(
    ("data", "status"),
    [
        ({"product": "NO-SUCH-SKU", "quantity": "1"}, 404),
        ({"product": "ROD-MUSKIE", "quantity": "-1"}, 400),
        ({"product": "ROD-MUSKIE", "quantity": "abc"}, 400),
        ({"product": "ROD-MUSKIE", "quantity": str(10**9)}, 400),
        ({"product": "ROD-MUSKIE"}, 400),
    ],
    ids=["unknown-sku", "qty-negative", "qty-text", "qty-huge", "qty-missing"],
)
def test_basket_update_with_bad_input(
    client: Client, untouched: None, data: dict[str, str], status: int
) -> None:
    client.post("/basket/add/", {"product": "ROD-MUSKIE", "quantity": "2"})

    response = client.post("/basket/update/", data)

    assert response.status_code == status
    assert client.session["basket"] == {
        str(Product.objects.get(sku="ROD-MUSKIE").pk): 2
    }


def test_checkout_with_an_empty_basket_is_400(client: Client, untouched: None) -> None:
    response = client.post("/basket/checkout", {"email": "angler@example.com"})

    assert response.status_code == 400
    assert "Your basket is empty" in response.content.decode()


@pytest.mark.parametrize("email", ["", "not-an-email"])
def test_checkout_with_a_bad_email_is_400_and_keeps_the_basket(
    client: Client, untouched: None, email: str
) -> None:
    client.post("/basket/add/", {"product": "ROD-MUSKIE", "quantity": "1"})

    response = client.post("/basket/checkout", {"email": email})

    assert response.status_code == 400
    assert len(client.session["basket"]) == 1


def test_checkout_when_stock_ran_out_meanwhile_is_409_and_keeps_the_basket(
    client: Client, muskie: Product, untouched: None
) -> None:
    client.post("/basket/add/", {"product": "ROD-MUSKIE", "quantity": "2"})
    Product.objects.filter(pk=muskie.pk).update(stock=1)

    response = client.post("/basket/checkout", {"email": "angler@example.com"})

    assert response.status_code == 409
    assert "only 1" in response.content.decode()
    assert len(client.session["basket"]) == 1
    Product.objects.filter(pk=muskie.pk).update(stock=muskie.stock)


def test_checkout_without_csrf_token_is_403(
    csrf_client: Client, untouched: None
) -> None:
    response = csrf_client.post("/basket/checkout", {"email": "angler@example.com"})

    assert response.status_code == 403


def test_search_query_too_long_is_400(client: Client, untouched: None) -> None:
    response = client.get("/search/", {"q": "x" * 101})

    assert response.status_code == 400
    assert "at most 100 characters" in response.content.decode()


def test_search_query_of_exactly_100_characters_is_fine(
    client: Client, untouched: None
) -> None:
    assert client.get("/search/", {"q": "x" * 100}).status_code == 200


def test_signup_with_mismatched_passwords_is_400(
    client: Client, untouched: None
) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "username": "a",
            "email": "a@example.com",
            "password1": "one long pass 1",
            "password2": "two long pass 2",
        },
    )

    assert response.status_code == 400
    assert not User.objects.exists()


@pytest.mark.parametrize("password", ["12345678", "password", "short"])
def test_signup_with_a_weak_password_is_400_and_creates_nobody(
    client: Client, untouched: None, password: str
) -> None:
    response = client.post(
        "/accounts/signup/",
        {
            "username": "weakling",
            "email": "weak@example.com",
            "password1": password,
            "password2": password,
        },
    )

    assert response.status_code == 400
    assert not User.objects.exists()
