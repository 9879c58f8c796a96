"""No secret in a span: an order's access token, the Authorization and Cookie values
a visitor sends, the session cookie the orders service sets and the internal token
its calls carry reach no stored span, though the traced stack captures those
headers (tests/support/tracing.py) and the token rides in the links' query.
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from websockets.sync.client import connect
from websockets.typing import Origin

from observability.purchase import (
    MUSKIE_PATH,
    ORDERS_SESSION_COOKIE,
    Purchase,
    Traceparent,
)
from observability.store import FileSpanStore, trace_wait
from tests.observability.conftest import placed_trace
from tests.support.edge import Process, set_mode
from tests.support.orders_stack import OrdersStack, wait_until

pytestmark = pytest.mark.stack


def _through_edge(edge: Process, path: str, headers: dict[str, str]) -> str:
    """GET `path` through the edge in a trace of its own; that trace's id."""
    sent = Traceparent.new()
    answer = httpx.get(
        edge.url + path, headers={**headers, "traceparent": sent.header}, timeout=10
    )
    assert answer.status_code == 200, (path, answer.status_code)
    return sent.trace_id


def _websocket_through_edge(edge: Process, path: str, headers: dict[str, str]) -> str:
    sent = Traceparent.new()
    with connect(
        edge.url.replace("http://", "ws://") + path,
        origin=Origin(edge.url),
        additional_headers={**headers, "traceparent": sent.header},
        open_timeout=10,
    ) as socket:
        assert json.loads(socket.recv(timeout=10))
    return sent.trace_id


def test_no_token_cookie_or_authorization_value_is_in_any_span(
    edge: Process, stack: OrdersStack, store: FileSpanStore, traces_dir
) -> None:
    # given the edge in strangler mode, a buyer who bought a Muskie rod through it
    # with the static page's form (the orders service's session cookie) and one
    # through the JSON API (the access token in its links)
    set_mode(edge, "strangler")
    placed = Traceparent.new()
    with httpx.Client(base_url=edge.url, timeout=30) as buyer:
        page = buyer.get(MUSKIE_PATH)
        assert page.headers["x-edge-origin"] == "muskie-site", page.headers
        bought = buyer.post(
            MUSKIE_PATH + "buy/",
            data={"quantity": "1", "email": "redact@example.com"},
            headers={"Origin": edge.url, "Referer": edge.url + MUSKIE_PATH},
        )
        assert bought.status_code == 303, bought.text
        answer = buyer.post(
            "/api/orders/",
            json={"sku": "ROD-MUSKIE", "quantity": 1, "email": "redact@example.com"},
            headers={
                "Idempotency-Key": str(uuid.uuid4()),
                "traceparent": placed.header,
            },
        )
        session = buyer.cookies.get(ORDERS_SESSION_COOKIE)
    assert answer.status_code == 202, answer.text
    assert session, "the orders service remembers the first order in its session"
    # (a CSRF cookie as the server-rendered pages set one)
    csrf = f"csrf-{uuid.uuid4().hex}"
    links = answer.json()
    order_id = links["id"]
    token = parse_qs(urlsplit(links["status_url"]).query)["token"][0]
    # when the buyer follows its order's page, status API and websocket, each with
    # its ?token=, and sends an Authorization header and cookies of its own
    bearer, visitor = f"bearer-{uuid.uuid4().hex}", f"cookie-{uuid.uuid4().hex}"
    headers = {
        "Authorization": f"Bearer {bearer}",
        "Cookie": f"{ORDERS_SESSION_COOKIE}={session}; csrftoken={csrf}; "
        f"visitor={visitor}",
    }
    status_url = edge.url + links["status_url"]
    wait_until(
        lambda: httpx.get(status_url, headers=headers).json()["status"] == "fulfilled",
        timeout=60,
        what=f"order {order_id} fulfilled",
    )
    followed = [
        _through_edge(edge, links["page_url"], headers),
        _through_edge(edge, links["status_url"], headers),
        _websocket_through_edge(edge, links["ws_url"], headers),
    ]
    purchase = Purchase("strangler", edge.url, placed, 202, status_url, "fulfilled")
    placed_trace(store, purchase)
    for trace_id in followed:
        trace_wait(
            store,
            trace_id,
            complete=lambda t: {"edge", "orders-api"} <= set(t.services),
        )
    # then no secret is in any stored span's name or attributes, nor anywhere in
    # the files the spans are in
    secrets = {
        "the order's access token": token,
        "the visitor's bearer token": bearer,
        "the visitor's cookie": visitor,
        "the orders session cookie": session,
        "the CSRF cookie": csrf,
        "the internal API token": stack.env["INTERNAL_API_TOKEN"],
    }
    written = "\n".join(
        json.dumps([span.name, span.attributes], default=str) for span in store.spans()
    )
    files = "\n".join(path.read_text() for path in traces_dir.glob("*.jsonl"))
    assert [what for what, value in secrets.items() if value in written] == []
    assert [what for what, value in secrets.items() if value in files] == []
    # and the spans still say where the token and the headers were
    assert "token=REDACTED" in written
    assert '"http.request.header.authorization": ["REDACTED"]' in written
