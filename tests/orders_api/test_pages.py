"""The hot product's pages on the orders service: the shop's look, the shop's form
contract, a status page its owner (or the token holder) may see, the sale board."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from orders_api.models import Order, Sale
from tests.orders_api.conftest import sale_create

pytestmark = pytest.mark.django_db(transaction=True)

PAGE = "/shop/rods/muskie-casting-rod/"
BUY = PAGE + "buy/"


def csrf_form(client: Client) -> dict[str, str]:
    page = client.get(PAGE).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)
    assert token
    assert key
    return {"csrfmiddlewaretoken": token.group(1), "idempotency_key": key.group(1)}


def buy(client: Client, **data: Any) -> Any:
    form = {**csrf_form(client), "quantity": "1", "email": "angler@example.com"}
    return client.post(BUY, {**form, **data})


def test_the_product_page_shows_live_stock_and_buy_it_now(
    browser: Client, sale: Sale
) -> None:
    response = browser.get(PAGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Muskie Casting Rod</h1>" in html
    assert "Buy it now!" in html
    assert "10 left" in html
    assert "$149.99" in html
    # Its own static files only (the shared look under its own prefix), nothing
    # from the shop's or a CDN
    assert "/static/orders/common/site.css" in html
    assert "/static/orders/css/orders.css" in html
    assert "/static/orders/js/live.js" in html
    assert "/static/shop/" not in html
    assert not re.search(r'(src|href)="https?://', html)


def test_buy_now_answers_303_to_the_status_page_its_session_may_see(
    browser: Client, sale: Sale
) -> None:
    response = buy(browser, quantity="2")

    assert response.status_code == 303
    order = Order.objects.get()
    assert response["Location"] == f"{PAGE}orders/{order.pk}/"
    assert order.quantity == 2
    status_page = browser.get(response["Location"])
    assert status_page.status_code == 200
    assert order.number in status_page.content.decode()
    assert "placed this order in this browser" in status_page.content.decode()
    # The API agrees, for the same session
    assert browser.get(f"/api/orders/{order.pk}/").status_code == 200


def test_the_status_page_needs_the_session_or_the_token(
    browser: Client, sale: Sale
) -> None:
    location = buy(browser)["Location"]
    stranger = Client()

    assert stranger.get(location).status_code == 401
    assert stranger.get(location + "?token=wrong").status_code == 403
    assert (
        stranger.get(f"{PAGE}orders/00000000-0000-0000-0000-000000000000/").status_code
        == 404
    )


def test_a_double_submitted_form_orders_once(browser: Client, sale: Sale) -> None:
    form = {**csrf_form(browser), "quantity": "1", "email": "a@example.com"}

    first = browser.post(BUY, form)
    second = browser.post(BUY, form)

    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"]
    assert Order.objects.count() == 1


def test_sold_out_is_a_409_page(browser: Client, transactional_db: None) -> None:
    sale_create(units=1)
    form = {**csrf_form(browser), "quantity": "1", "email": "a@example.com"}
    browser.post(BUY, {**form, "idempotency_key": ""})

    response = browser.post(BUY, {**form, "idempotency_key": ""})

    assert response.status_code == 409
    assert "sold out" in response.content.decode()
    assert Order.objects.count() == 1


def test_too_many_attempts_is_a_429_page_with_retry_after(
    browser: Client, sale: Sale, settings: Any
) -> None:
    settings.ORDERS_RATE_LIMIT = 2
    buy(browser)
    buy(browser)

    response = buy(browser)

    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert Order.objects.count() == 2


def test_the_sale_board_shows_the_figures(browser: Client, sale: Sale) -> None:
    buy(browser, quantity="3")

    response = browser.get("/sale/muskie-casting-rod/")

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-board="remaining">7<' in html
    assert 'data-board="accepted">1<' in html
    assert "/ws/sale/muskie-casting-rod/" in html


def test_no_sale_means_404_pages(browser: Client, transactional_db: None) -> None:
    assert browser.get(PAGE).status_code == 404
    assert browser.get("/sale/muskie-casting-rod/").status_code == 404
    assert browser.get("/api/sales/muskie-casting-rod/").status_code == 404


def test_another_category_is_not_this_product(browser: Client, sale: Sale) -> None:
    assert browser.get("/shop/reels/muskie-casting-rod/").status_code == 404


def test_the_api_docs_load_nothing_from_a_cdn(browser: Client, sale: Sale) -> None:
    docs = browser.get("/api/docs/")
    schema = browser.get("/api/schema/")

    html = docs.content.decode()
    assert docs.status_code == 200
    assert schema.status_code == 200
    assert not re.search(r'(src|href)="https?://', html)
    assert "/static/orders/drf_spectacular_sidecar/" in html


def test_health_and_readiness(browser: Client, sale: Sale) -> None:
    assert browser.get("/healthz").json() == {"status": "ok"}
    ready = browser.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": True, "redis": True}
