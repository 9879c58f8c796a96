"""What a scanner sees: every HTML page of every service sends a strict
Content-Security-Policy, and the pages work under it in a real Chromium.

The whole order path runs as real processes behind the edge in strangler mode, so
the shop's pages and the orders service's pages come through one front door.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from tests.support.edge import Process
from tests.support.inline_code import inline_code, policy_problems
from tests.support.orders_stack import OrdersStack

pytestmark = pytest.mark.stack

MUSKIE = "/shop/rods/muskie-casting-rod/"
TOURNEY = "/shop/rods/tourney-casting-rod/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

# (path, the origin the edge sends it to, the status it answers)
PAGES = [
    ("/shop/", "shop", 200),
    ("/shop/rods/", "shop", 200),
    (TOURNEY, "shop", 200),
    ("/search/?q=rod", "shop", 200),
    ("/basket/", "shop", 200),
    ("/accounts/login/", "shop", 200),
    ("/accounts/signup/", "shop", 200),
    ("/admin/login/", "shop", 200),
    ("/shop/no-such-category/", "shop", 404),
    (MUSKIE, "muskie-site", 200),
    ("/sale/muskie-casting-rod/", "orders", 200),
    ("/api/docs/", "orders", 200),
    (f"{MUSKIE}orders/{uuid.uuid4()}/", "orders", 404),
    ("/sale/no-such-sale/", "orders", 404),
]


@pytest.fixture
def edge(strangler_edge: Process) -> Process:
    return strangler_edge


def assert_strict_html_page(response: httpx.Response) -> None:
    """An HTML page with the strict policy and nothing inline the policy blocks."""
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers.get("content-security-policy")
    assert policy_problems(policy) == [], (response.url, policy)
    assert inline_code(response.text) == [], response.url


@pytest.mark.parametrize(("path", "origin", "status"), PAGES)
def test_every_html_page_through_the_edge_carries_the_strict_policy(
    edge: Process, path: str, origin: str, status: int
) -> None:
    response = httpx.get(edge.url + path, timeout=10)

    assert response.status_code == status
    assert response.headers["x-edge-origin"] == origin
    assert_strict_html_page(response)


def test_a_refused_form_is_an_html_page_with_the_policy_on_both_services(
    edge: Process,
) -> None:
    # A post without its CSRF token: each service's own refusal page
    for path, origin in (("/basket/add/", "shop"), (MUSKIE + "buy/", "orders")):
        response = httpx.post(edge.url + path, data={"quantity": "1"}, timeout=10)

        assert response.status_code == 403
        assert response.headers["x-edge-origin"] == origin
        assert_strict_html_page(response)


def test_confirmation_and_order_status_pages_carry_the_policy(edge: Process) -> None:
    with httpx.Client(base_url=edge.url, timeout=30) as visitor:
        # Given a legacy purchase of the Tourney rod and a sale purchase of the Muskie
        page = visitor.get(TOURNEY).text
        legacy = visitor.post(
            TOURNEY + "buy/",
            data={"csrfmiddlewaretoken": CSRF.findall(page)[0], "quantity": "1",
                  "email": "csp-shop@example.com"},
            headers={"Origin": edge.url},
        )  # fmt: skip
        # (the Muskie page is the static minisite: its form has no token, the
        # browser's Origin vouches for it)
        assert visitor.get(MUSKIE).status_code == 200
        sale = visitor.post(
            MUSKIE + "buy/",
            data={"quantity": "1", "email": "csp-orders@example.com"},
            headers={"Origin": edge.url},
        )
        assert (legacy.status_code, sale.status_code) == (303, 303)

        # Then the shop's confirmation and the orders service's status page
        for location in (legacy.headers["location"], sale.headers["location"]):
            response = visitor.get(location)
            assert response.status_code == 200
            assert_strict_html_page(response)


def test_json_and_static_answers_carry_no_policy(
    edge: Process, sale_stack: OrdersStack
) -> None:
    # The policy is for documents: an API answer or a style sheet loads nothing
    for url in (
        edge.url + "/api/sales/muskie-casting-rod/",
        edge.url + "/static/orders/css/orders.css",
        sale_stack.warehouse_url + "/healthz",
    ):
        response = httpx.get(url, timeout=10)
        assert response.status_code == 200
        assert "content-security-policy" not in response.headers


def test_the_warehouse_serves_no_html_even_for_its_errors(
    sale_stack: OrdersStack,
) -> None:
    response = httpx.get(sale_stack.warehouse_url + "/no-such-page/", timeout=10)

    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
