"""Every malformed request gets its precise status and a JSON error, and writes nothing.

Sent to the real gunicorn process: the 413/415/404 paths go through the real server.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pytest

from tests.warehouse.conftest import WarehouseProcess

JSON = "application/json"


def _order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "order_ref": "BAD-1",
        "lines": [{"sku": "ROD-001", "quantity": 1}],
    }
    body.update(overrides)
    return body


def _line(**overrides: Any) -> dict[str, Any]:
    return _order(lines=[{"sku": "ROD-001", "quantity": 1, **overrides}])


class Case(NamedTuple):
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    code: str


def _post(body: bytes, status: int, code: str, content_type: str | None = JSON) -> Case:
    headers = {"Content-Type": content_type} if content_type else {}
    return Case("POST", "/fulfilments/", headers, body, status, code)


def _invalid(value: Any) -> Case:
    return _post(json.dumps(value).encode(), 400, "invalid_request")


def _malformed(raw: bytes) -> Case:
    return _post(raw, 400, "malformed_json")


def _wrong_type(content_type: str | None, body: bytes) -> Case:
    return _post(body, 415, "unsupported_media_type", content_type)


def _no_method(method: str, path: str) -> Case:
    return Case(method, path, {}, b"", 405, "method_not_allowed")


VALID = json.dumps(_order()).encode()
HUGE_INT = b"9" * 5000
FIFTY_ONE = [{"sku": f"S{i}", "quantity": 1} for i in range(51)]

CASES: dict[str, Case] = {
    "malformed JSON": _malformed(b'{"order_ref": "A", '),
    "empty body": _malformed(b""),
    "not UTF-8": _malformed(b'{"order_ref": "\xff"}'),
    "duplicate key": _malformed(b'{"order_ref": "A", "order_ref": "B", "lines": []}'),
    "quantity huge": _malformed(
        b'{"order_ref": "A", "lines": [{"sku": "A", "quantity": ' + HUGE_INT + b"}]}"
    ),
    "JSON list": _invalid([_order()]),
    "JSON string": _invalid("BAD-1"),
    "JSON null": _invalid(None),
    "missing order_ref": _invalid({"lines": _order()["lines"]}),
    "missing lines": _invalid({"order_ref": "BAD-1"}),
    "order_ref empty": _invalid(_order(order_ref="")),
    "order_ref too long": _invalid(_order(order_ref="A" * 65)),
    "order_ref with a space": _invalid(_order(order_ref="A B")),
    "order_ref with a newline": _invalid(_order(order_ref="AB\n")),
    "order_ref a number": _invalid(_order(order_ref=12)),
    "empty lines": _invalid(_order(lines=[])),
    "lines an object": _invalid(_order(lines={"sku": "A", "quantity": 1})),
    "51 lines": _invalid(_order(lines=FIFTY_ONE)),
    "line a string": _invalid(_order(lines=["ROD-001"])),
    "quantity 0": _invalid(_line(quantity=0)),
    "quantity -1": _invalid(_line(quantity=-1)),
    "quantity 1001": _invalid(_line(quantity=1001)),
    "quantity '2'": _invalid(_line(quantity="2")),
    "quantity 2.5": _invalid(_line(quantity=2.5)),
    "quantity 2.0": _invalid(_line(quantity=2.0)),
    "quantity true": _invalid(_line(quantity=True)),
    "quantity null": _invalid(_line(quantity=None)),
    "sku too long": _invalid(_line(sku="S" * 33)),
    "sku empty": _invalid(_line(sku="")),
    "sku a number": _invalid(_line(sku=1)),
    "unknown key": _invalid(_order(priority="high")),
    "unknown line key": _invalid(_line(price="9.99")),
    "text/plain": _wrong_type("text/plain", VALID),
    "form encoded": _wrong_type("application/x-www-form-urlencoded", b"order_ref=A"),
    "no content type": _wrong_type(None, VALID),
    "latin-1 JSON": _wrong_type("application/json; charset=latin-1", VALID),
    "oversize body": _post(
        b'{"order_ref": "A", "lines": [' + b" " * (64 * 1024) + b"]}",
        413,
        "payload_too_large",
    ),
    "DELETE /fulfilments/": _no_method("DELETE", "/fulfilments/"),
    "PUT /fulfilments/": _no_method("PUT", "/fulfilments/"),
    "POST /stats/": _no_method("POST", "/stats/"),
    "GET /stats/reset": _no_method("GET", "/stats/reset"),
    "POST /healthz": _no_method("POST", "/healthz"),
    "unknown path": Case("GET", "/nope", {}, b"", 404, "not_found"),
    "no trailing slash": Case("POST", "/fulfilments", {}, VALID, 404, "not_found"),
}


@pytest.mark.parametrize(
    Case._fields,
    list(CASES.values()),
    ids=list(CASES),
)
def test_bad_request_is_refused_precisely_and_writes_nothing(
    warehouse: WarehouseProcess,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    status: int,
    code: str,
) -> None:
    # Given the warehouse's tables as they are
    fulfilments, refusals = warehouse.fulfillment_count(), warehouse.refusal_count()

    # When a bad request arrives
    with warehouse.client() as client:
        response = client.request(method, path, headers=headers, content=body)

    # Then it gets its precise status and a JSON error saying what is wrong
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()
    assert error["error"] == code
    assert isinstance(error["detail"], str)
    assert error["detail"]
    if status == 405:
        assert response.headers["Allow"]
    # And nothing is written
    assert warehouse.fulfillment_count() == fulfilments
    assert warehouse.refusal_count() == refusals
