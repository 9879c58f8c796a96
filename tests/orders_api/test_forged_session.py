"""The attack the public secret key allowed: sign an orders session listing any order
id and read that order. A running orders service, on the key its run was given,
answers such a session as it answers a stranger."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core import signing

from common.stack_secrets import PUBLIC_VALUES
from tests.support.orders_stack import OrdersStack, orders_stack

pytestmark = pytest.mark.stack

OLD_KEY = next(iter(PUBLIC_VALUES["DJANGO_SECRET_KEY"]))
SESSION_COOKIE = "orders_sessionid"
ORDER_PAGE = "/shop/rods/muskie-casting-rod/orders/{id}/"


@pytest.fixture(scope="module")
def stack() -> Iterator[OrdersStack]:
    with orders_stack("forged") as running:
        yield running


def session_forge(order_id: str, *, key: str) -> str:
    """A session cookie listing `order_id`, signed as Django's signed-cookie
    sessions sign theirs (orders_api/ordering/clients.py keeps the ids)."""
    return signing.dumps(
        {"orders": [order_id]},
        key=key,
        salt="django.contrib.sessions.backends.signed_cookies",
        compress=True,
    )


def order_place(stack: OrdersStack, email: str) -> dict[str, Any]:
    with stack.client() as client:
        answer = client.post(
            "/api/orders/",
            json={"sku": "ROD-MUSKIE", "quantity": 1, "email": email},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def as_session(stack: OrdersStack, cookie: str, path: str) -> httpx.Response:
    with httpx.Client(base_url=stack.orders.url, timeout=30) as client:
        client.cookies.set(SESSION_COOKIE, cookie)
        return client.get(path)


def test_a_session_signed_with_the_old_public_key_reads_no_order(
    stack: OrdersStack,
) -> None:
    # Given someone else's order
    stack.sale_reopen(5)
    order = order_place(stack, "victim@example.com")
    paths = [f"/api/orders/{order['id']}/", ORDER_PAGE.format(id=order["id"])]
    # When an attacker sends a session listing its id, signed with the old public key
    answers = [
        as_session(stack, session_forge(order["id"], key=OLD_KEY), p) for p in paths
    ]
    # Then neither the API nor the order page shows the order
    assert [a.status_code for a in answers] == [401, 401]
    assert not [a for a in answers if order["number"] in a.text]
    # While the same session signed with the key this stack was given does: the forged
    # cookie is well made, only its key is wrong
    genuine = session_forge(order["id"], key=stack.env["DJANGO_SECRET_KEY"])
    answers = [as_session(stack, genuine, p) for p in paths]
    assert [a.status_code for a in answers] == [200, 200]
    assert all(order["number"] in a.text for a in answers)
