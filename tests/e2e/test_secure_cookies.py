"""DJANGO_HTTPS=1 (the stack served over HTTPS) makes the session and CSRF cookies
`Secure`; without it they are plain, so the demo on http://127.0.0.1 keeps working.

The stack's shop and orders service run once more with DJANGO_HTTPS=1, on the same
databases and Redis. Requests say they came over HTTPS the way the edge says it
(X-Forwarded-Proto), and the browser's Origin is an https one: the CSRF check must
accept it, which it only does when the service trusts the edge's word.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http.cookies import Morsel, SimpleCookie

import httpx
import pytest

from common.harness.services import procfile_process
from tests.support.orders_stack import OrdersStack
from tests.support.processes import RunningService, database_url

pytestmark = pytest.mark.stack

MUSKIE = "/shop/rods/muskie-casting-rod/"
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


@pytest.fixture(scope="module")
def https_services(
    sale_stack: OrdersStack,
) -> Iterator[dict[str, RunningService]]:
    shop_env = {
        "SHOP_DATABASE_URL": database_url(sale_stack.databases["shop"]),
        "WAREHOUSE_URL": sale_stack.warehouse_url,
        "REDIS_URL": sale_stack.env["REDIS_URL"],
        "DJANGO_HTTPS": "1",
    }
    orders_env = {**sale_stack.env, "DJANGO_HTTPS": "1"}
    with (
        procfile_process("shop", env=shop_env, tag="https") as shop,
        procfile_process("orders", env=orders_env, tag="https") as orders,
    ):
        yield {"shop": shop, "orders": orders}


def services(
    https: bool, sale_stack: OrdersStack, https_services: dict[str, RunningService]
) -> dict[str, RunningService]:
    if https:
        return https_services
    return {"shop": sale_stack.shop, "orders": sale_stack.orders}


def set_cookies(response: httpx.Response) -> dict[str, Morsel[str]]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return dict(jar)


def post_form(
    service: RunningService,
    path: str,
    page: httpx.Response,
    fields: dict[str, str],
    *,
    https: bool,
) -> httpx.Response:
    """Post the page's form back as a browser would, its CSRF cookie sent by hand
    (httpx keeps a `Secure` cookie away from an http:// URL)."""
    scheme = "https" if https else "http"
    return httpx.post(
        service.url + path,
        data={"csrfmiddlewaretoken": CSRF.findall(page.text)[0], **fields},
        headers={
            "Cookie": f"csrftoken={set_cookies(page)['csrftoken'].value}",
            "Origin": f"{scheme}://127.0.0.1:{service.port}",
            "X-Forwarded-Proto": scheme,
        },
        timeout=30,
    )


@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
def test_the_shop_s_session_and_csrf_cookies_are_secure_only_over_https(
    https: bool, sale_stack: OrdersStack, https_services: dict[str, RunningService]
) -> None:
    shop = services(https, sale_stack, https_services)["shop"]
    # Given the Tourney page, which hands out the CSRF cookie
    page = httpx.get(shop.url + "/shop/rods/tourney-casting-rod/", timeout=10)
    # When the visitor adds it to the basket (a session begins)
    added = post_form(
        shop,
        "/basket/add/",
        page,
        {"product": "ROD-TOURNEY", "quantity": "1"},
        https=https,
    )
    # Then both cookies are Secure exactly when the stack is served over HTTPS
    assert added.status_code == 303
    assert bool(set_cookies(page)["csrftoken"]["secure"]) is https
    assert bool(set_cookies(added)["sessionid"]["secure"]) is https


@pytest.mark.parametrize("https", [True, False], ids=["https", "http"])
def test_the_orders_session_and_csrf_cookies_are_secure_only_over_https(
    https: bool, sale_stack: OrdersStack, https_services: dict[str, RunningService]
) -> None:
    orders = services(https, sale_stack, https_services)["orders"]
    # Given the Muskie page of the sale
    page = httpx.get(orders.url + MUSKIE, timeout=10)
    # When the buyer buys one (the session remembers the order)
    bought = post_form(
        orders,
        MUSKIE + "buy/",
        page,
        {"idempotency_key": KEY.findall(page.text)[0], "quantity": "1",
         "email": "secure-cookies@example.com"},
        https=https,
    )  # fmt: skip
    # Then both cookies are Secure exactly when the stack is served over HTTPS
    assert bought.status_code == 303
    assert bool(set_cookies(page)["csrftoken"]["secure"]) is https
    assert bool(set_cookies(bought)["orders_sessionid"]["secure"]) is https
