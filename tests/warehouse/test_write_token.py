"""Every write to the warehouse takes the internal token: none is 401, a wrong one 403,
and either way nothing is packed and the measuring window is not reset.

Sent to the real gunicorn process (the `warehouse` fixture), the store read back
from its own database and its own stats.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.support.stack import INTERNAL_AUTH
from tests.warehouse.conftest import WarehouseProcess
from tests.warehouse.orders import new_order_ref, order_payload

JSON = {"Content-Type": "application/json"}
NO_TOKEN: dict[str, str] = {}
NOT_BEARER = {"Authorization": "Basic aGFybmVzczppbnRlcm5hbA=="}
WRONG_TOKEN = {"Authorization": "Bearer not-the-internal-token"}
# A page of another site posting a form to the warehouse from an operator's browser:
# the browser adds the Origin, never an Authorization header of its own accord.
CROSS_SITE = {
    "Origin": "https://attacker.example",
    "Referer": "https://attacker.example/win-a-rod.html",
    "Content-Type": "application/x-www-form-urlencoded",
}

# Every write route, and the writes no route takes (a route added later included).
WRITES = [
    ("POST", "/fulfilments/"),
    ("POST", "/stats/reset"),
    ("PUT", "/fulfilments/"),
    ("PATCH", "/fulfilments/"),
    ("DELETE", "/fulfilments/"),
    ("POST", "/stats/"),
    ("DELETE", "/stats/reset"),
    ("POST", "/healthz"),
    ("POST", "/a-route-added-later/"),
]


def _store(warehouse: WarehouseProcess) -> dict[str, Any]:
    """What a write could change: the rows and the measuring window."""
    with warehouse.client() as client:
        stats = client.get("/stats/").json()
    return {
        "fulfilments": warehouse.fulfillment_count(),
        "refusals": warehouse.refusal_count(),
        "stats": stats,
    }


def _send(
    warehouse: WarehouseProcess, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    body = json.dumps(order_payload(new_order_ref())).encode()
    # A bare client: the fixture's own sends the token.
    return httpx.request(
        method, warehouse.url + path, headers=headers, content=body, timeout=30
    )


@pytest.mark.parametrize(("method", "path"), WRITES)
@pytest.mark.parametrize(
    ("credentials", "status", "code"),
    [
        (NO_TOKEN, 401, "not_authenticated"),
        (NOT_BEARER, 401, "not_authenticated"),
        (WRONG_TOKEN, 403, "forbidden"),
    ],
    ids=["no-token", "not-bearer", "wrong-token"],
)
def test_a_write_without_the_token_is_refused_and_changes_nothing(
    warehouse: WarehouseProcess,
    method: str,
    path: str,
    credentials: dict[str, str],
    status: int,
    code: str,
) -> None:
    # Given the warehouse's store as it is
    before = _store(warehouse)

    # When a write arrives without the internal token
    response = _send(warehouse, method, path, {**JSON, **credentials})

    # Then it is refused in JSON, a 401 saying how to authenticate
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    if status == 401:
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="warehouse"'
    # And no order was packed and the measuring window was not reset
    assert _store(warehouse) == before


@pytest.mark.parametrize("path", ["/fulfilments/", "/stats/reset"])
def test_a_cross_site_form_post_is_refused(
    warehouse: WarehouseProcess, path: str
) -> None:
    # Given the store as it is, and a page of another site in an operator's browser
    before = _store(warehouse)
    form = f"order_ref={new_order_ref()}&lines=ROD-001"

    # When the page posts a form to the warehouse
    response = httpx.post(
        warehouse.url + path, headers=CROSS_SITE, content=form, timeout=30
    )

    # Then it is refused, the answer is not readable by that site, nothing changed
    assert response.status_code == 401
    assert "Access-Control-Allow-Origin" not in response.headers
    assert _store(warehouse) == before


def test_with_the_token_an_order_is_packed(warehouse: WarehouseProcess) -> None:
    # Given an order and the store as it is
    order_ref = new_order_ref()
    before = warehouse.fulfillment_count()

    # When the queue's worker (or the shop) sends it with the internal token
    response = _send_order(warehouse, order_ref)

    # Then it is packed: one row more, that order's
    assert response.status_code == 201, response.text
    assert warehouse.fulfillment_count() == before + 1
    assert warehouse.fulfillment_count(order_ref) == 1


def test_with_the_token_the_window_is_reset(warehouse: WarehouseProcess) -> None:
    # Given a window with one packed order in it
    assert _send_order(warehouse, new_order_ref()).status_code == 201
    before = _store(warehouse)
    assert before["stats"]["fulfilled"] >= 1

    # When the sale run resets it with the internal token
    response = httpx.post(
        warehouse.url + "/stats/reset", headers=INTERNAL_AUTH, timeout=30
    )

    # Then a new window starts and the packed orders stay
    assert response.status_code == 200, response.text
    after = _store(warehouse)
    assert after["stats"]["fulfilled"] == 0
    since = datetime.fromisoformat
    assert since(after["stats"]["since"]) > since(before["stats"]["since"])
    assert after["fulfilments"] == before["fulfilments"]


def _send_order(warehouse: WarehouseProcess, order_ref: str) -> httpx.Response:
    return httpx.post(
        warehouse.url + "/fulfilments/",
        json=order_payload(order_ref),
        headers=INTERNAL_AUTH,
        timeout=30,
    )
