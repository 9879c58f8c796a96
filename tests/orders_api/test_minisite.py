"""The sale's static minisite (orders_api/sales/site.py) and how its orders are kept
safe from cross-site forgery: the buy-now form takes the browser's same-origin word
(or Django's CSRF token), the JSON API a JSON body and an Idempotency-Key header that
no cross-site form can send, with CORS closed."""

from __future__ import annotations

import io
import re
from pathlib import Path

from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from orders_api.models import Order, Sale
from orders_api.sales.site import sale_site_build
from tests.orders_api.conftest import order_body

PAGE = "/shop/rods/muskie-casting-rod/"
BUY = PAGE + "buy/"
FORM = {"quantity": "1", "email": "angler@example.com"}


def test_the_built_page_holds_the_sale_and_names_only_assets_it_wrote(
    sale: Sale, tmp_path: Path
) -> None:
    # when the minisite is built
    page = sale_site_build(sale=sale, directory=tmp_path)
    # then the page is where the edge looks for the product page's path
    assert page == tmp_path / "shop" / "rods" / "muskie-casting-rod" / "index.html"
    html = page.read_text()
    assert sale.name in html
    assert f"${sale.price}" in html
    # and its form posts to the buy-now endpoint without a token (none to give)
    assert f'action="{BUY}"' in html
    assert 'data-sale-api="/api/sales/muskie-casting-rod/"' in html
    assert "csrfmiddlewaretoken" not in html
    # and every asset it names was written beside it; no inline script
    assets = re.findall(
        r'(?:href|src)="(/shop/rods/muskie-casting-rod/assets/[^"]+)"', html
    )
    assert {a.rsplit(".", 1)[1] for a in assets} == {"css", "svg", "js"}
    for asset in assets:
        assert (tmp_path / asset.lstrip("/")).is_file(), asset
    assert re.search(r"<script(?![^>]*\ssrc=)", html) is None


def test_a_rebuild_replaces_the_page_and_keeps_the_older_assets(
    sale: Sale, tmp_path: Path
) -> None:
    first = sale_site_build(sale=sale, directory=tmp_path)
    Sale.objects.filter(pk=sale.pk).update(name="Muskie Casting Rod II")
    sale.refresh_from_db()
    second = sale_site_build(sale=sale, directory=tmp_path)
    assert second == first
    assert "Muskie Casting Rod II" in second.read_text()
    assert not list(second.parent.glob(".build-*"))


def test_the_build_site_command_writes_the_current_sale(
    sale: Sale, tmp_path: Path
) -> None:
    out = io.StringIO()
    call_command("sale", "build-site", sale.slug, "--dir", str(tmp_path), stdout=out)
    assert "static minisite written to" in out.getvalue()
    assert (tmp_path / PAGE.strip("/") / "index.html").is_file()


def test_the_static_pages_form_is_taken_with_its_own_origin(sale: Sale) -> None:
    # given a browser on the static page (no CSRF cookie, no token)
    browser = Client(enforce_csrf_checks=True)
    # when its form is sent, the browser saying where from
    response = browser.post(BUY, FORM, headers={"Origin": "http://testserver"})
    # then the order is placed and the buyer sent to its page
    assert response.status_code == 303
    assert Order.objects.count() == 1


def test_a_same_origin_fetch_metadata_header_vouches_for_the_form(sale: Sale) -> None:
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(BUY, FORM, headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 303
    assert Order.objects.count() == 1


def test_a_form_sent_from_another_site_is_403_and_orders_nothing(sale: Sale) -> None:
    browser = Client(enforce_csrf_checks=True)
    for headers in (
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://shop.testserver"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
    ):
        response = browser.post(BUY, FORM, headers=headers)
        assert response.status_code == 403, headers
    assert Order.objects.count() == 0


def test_a_form_with_no_word_from_a_browser_still_needs_the_csrf_token(
    sale: Sale,
) -> None:
    response = Client(enforce_csrf_checks=True).post(BUY, FORM)
    assert response.status_code == 403
    assert Order.objects.count() == 0


def test_what_a_cross_site_form_can_send_the_json_api_refuses(sale: Sale) -> None:
    # given what a page elsewhere can post without asking CORS: a form, no headers
    api = APIClient()
    body = '{"sku": "ROD-MUSKIE", "quantity": 1, "email": "a@example.com"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        # when it reaches the JSON API
        response = api.post(
            "/api/orders/",
            body,
            content_type=content_type,
            headers={"Origin": "https://evil.example"},
        )
        # then it is refused, and nothing is ordered
        assert response.status_code in {400, 415}, content_type
    assert Order.objects.count() == 0


def test_cors_stays_closed_to_other_sites(sale: Sale) -> None:
    # given a page elsewhere asking whether it may send the JSON API's headers
    preflight = APIClient().options(
        "/api/orders/",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key",
        },
    )
    # then no answer says yes, so the browser never sends the order
    assert "Access-Control-Allow-Origin" not in preflight
    accepted = APIClient().post(
        "/api/orders/",
        order_body(),
        format="json",
        headers={"Idempotency-Key": "k-1", "Origin": "https://evil.example"},
    )
    assert "Access-Control-Allow-Origin" not in accepted
