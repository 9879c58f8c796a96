"""The control room over plain HTTP and its websocket: who may use it, what bad input
gets, what its feed pushes, and one sale at a time. The browser's side is in
tests/e2e/test_control_room.py."""

from __future__ import annotations

import html
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.support.edge import ADMIN_TOKEN, Process, admin_url, edge_process
from tests.support.processes import RunningService, free_port
from tests.support.stack import INTERNAL_TOKEN

ROOT = Path(__file__).resolve().parents[2]
CONTROL = "/_edge/control/"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WATCHED = "/shop/rods/tourney-casting-rod/"


@pytest.fixture(scope="module")
def room(shop_origin: Process, warehouse: RunningService) -> Iterator[Process]:
    """The edge with the real warehouse behind its control room; the orders service
    is a port where nothing answers (as when it is down)."""
    with edge_process(
        shop_origin.url,
        f"http://127.0.0.1:{free_port()}",
        WAREHOUSE_URL=warehouse.url,
        INTERNAL_API_TOKEN=INTERNAL_TOKEN,
        FAULTS_KEY_PREFIX=f"faults-test-{uuid.uuid4().hex[:8]}",
    ) as running:
        yield running


def signed_in(edge: Process, name: str = "Ana") -> httpx.Client:
    client = httpx.Client(base_url=admin_url(edge), timeout=30)
    answer = client.post(CONTROL + "login", data={"name": name, "token": ADMIN_TOKEN})
    assert answer.status_code == 303, answer.text
    return client


def feed(edge: Process, **headers: str) -> ClientConnection:
    url = admin_url(edge).replace("http://", "ws://") + CONTROL + "feed"
    return connect(url, additional_headers=headers, open_timeout=10)


def ticks(socket: ClientConnection, count: int) -> list[dict[str, Any]]:
    history = json.loads(socket.recv(timeout=10))
    assert history["type"] == "history"
    return [json.loads(socket.recv(timeout=10)) for _ in range(count)]


def test_without_the_token_the_page_is_a_login_form_and_every_action_a_401(
    room: Process,
) -> None:
    # Given no token and no session
    # When the page and each action are asked for
    page = httpx.get(admin_url(room) + CONTROL)
    actions = [
        httpx.post(admin_url(room) + CONTROL + path, json=body)
        for path, body in [
            ("mode", {"mode": "strangler"}),
            ("faults/set", {"name": "warehouse.down", "value": 1}),
            ("faults/clear", {}),
            ("sale/start", {"mode": "strangler"}),
            ("sale/stop", {}),
        ]
    ]
    state = httpx.get(admin_url(room) + CONTROL + "state")

    # Then the page is the login form, 401, and nothing else answers but 401
    assert page.status_code == 401
    assert '<form method="post" action="/_edge/control/login">' in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert [a.status_code for a in actions] == [401] * 5
    assert state.status_code == 401
    assert "Authorization: Bearer" in actions[0].json()["error"]
    # And the mode never moved
    assert httpx.get(room.url + "/_edge/healthz").json()["mode"] == "legacy"


def test_a_wrong_token_a_forged_cookie_or_a_wrong_login_is_a_403(room: Process) -> None:
    # Given a wrong token, a cookie signed with another key, and a wrong login
    wrong = httpx.post(
        admin_url(room) + CONTROL + "mode",
        json={"mode": "strangler"},
        headers={"Authorization": "Bearer not-the-token"},
    )
    forged = httpx.post(
        admin_url(room) + CONTROL + "mode",
        json={"mode": "strangler"},
        headers={"Cookie": f"edge_control=QW5h.{int(time.time())}.{'0' * 64}"},
    )
    login = httpx.post(
        admin_url(room) + CONTROL + "login", data={"name": "Eve", "token": "guess"}
    )

    # Then each is refused with a 403, no cookie is given, and the mode stays
    assert (wrong.status_code, forged.status_code, login.status_code) == (403,) * 3
    assert "set-cookie" not in login.headers
    assert "not the edge's admin token" in html.unescape(login.text)
    assert httpx.get(room.url + "/_edge/healthz").json()["mode"] == "legacy"


def test_the_login_cookie_opens_the_page_and_the_log_says_who_flipped_the_mode(
    room: Process,
) -> None:
    # Given a presenter signed in with the login form
    client = signed_in(room, "Ana on stage")
    cookie = client.cookies.jar
    (given,) = list(cookie)
    assert given.path == CONTROL
    assert given.has_nonstandard_attr("HttpOnly")
    assert ADMIN_TOKEN not in (given.value or "")

    # When the page is opened, and the mode flipped to canary 25 %, then back
    page = client.get(CONTROL)
    flipped = client.post(CONTROL + "mode", json={"mode": "canary", "percent": 25})
    back = client.post(CONTROL + "mode", json={"mode": "legacy"})

    # Then the page is served, each flip answers the command it stands for
    assert page.status_code == 200
    assert '<script src="/_edge/control/static/control.js"' in page.text
    assert flipped.status_code == 200, flipped.text
    assert flipped.json()["command"] == "python manage.py edge mode canary --percent 25"
    assert flipped.json()["mode"]["percent"] == 25
    assert back.json()["mode"]["mode"] == "legacy"
    # And the edge's log says who did what
    deadline = time.monotonic() + 5
    line = "control room: Ana on stage from 127.0.0.1: mode "
    while line + "(`python manage.py edge mode legacy`)" not in room.log():
        assert time.monotonic() < deadline, room.log()[-2000:]
        time.sleep(0.1)
    assert line + "(`python manage.py edge mode canary --percent 25`)" in room.log()


@pytest.mark.parametrize(
    ("path", "body", "headers", "status", "says"),
    [
        ("mode", b'{"mode": "strangler"}', {"Content-Type": "text/plain"}, 415, "JSON"),
        ("mode", b'{"mode": ', {}, 400, "malformed JSON"),
        ("mode", b'["strangler"]', {}, 422, "expected an object"),
        ("mode", b'{"mode": "sideways"}', {}, 422, "mode must be one of"),
        ("mode", b'{"mode": "canary", "percent": 101}', {}, 422, "between 0 and 100"),
        ("mode", b'{"mode": "legacy", "colour": 1}', {}, 422, "unknown fields"),
        ("faults/set", b'{"name": "shop.down", "value": 1}', {}, 422, "one of"),
        ("faults/set", b'{"name": "warehouse.down", "value": "1;"}', {}, 422, "value"),
        ("faults/set", b'{"name": "redis.pause", "value": 1, "ttl": 0}', {}, 422, "tt"),
        ("faults/kill", b'{"process": "postgres"}', {}, 422, "fulfillment-worker"),
        ("sale/start", b'{"units": 0}', {}, 422, "units must be between"),
        ("sale/start", b'{"mode": "canary"}', {}, 422, "mode must be one of"),
        ("sale/start", b'{"after": "soon"}', {}, 422, "after must be a number"),
        ("sale/start", b'{"shell": "sh"}', {}, 422, "unknown options"),
        ("sale/stop", b"{}", {}, 409, "no sale is running"),
        ("mode", b'{"mode": "' + b"x" * 5000 + b'"}', {}, 413, "at most"),
        ("nowhere", b"{}", {}, 404, "no such page"),
    ],
    ids=[
        "not-json", "malformed", "not-object", "no-such-mode", "percent-101",
        "unknown-field", "no-such-fault", "value-not-a-value", "ttl-0", "kill-what",
        "units-0", "sale-mode", "after-word", "sale-unknown", "stop-nothing",
        "too-large", "no-page",
    ],
)  # fmt: skip
def test_bad_input_gets_a_precise_answer_and_changes_nothing(
    room: Process,
    path: str,
    body: bytes,
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    # Given the token; when a bad action is sent
    answer = httpx.post(
        admin_url(room) + CONTROL + path,
        content=body,
        headers={"Content-Type": "application/json", **AUTH, **headers},
    )
    # Then its status and its words say what is wrong, and the mode stays
    assert answer.status_code == status, answer.text
    assert says in answer.json()["error"]
    assert httpx.get(room.url + "/_edge/healthz").json()["mode"] == "legacy"


def test_a_get_on_an_action_is_a_405_naming_the_method(room: Process) -> None:
    answer = httpx.get(admin_url(room) + CONTROL + "mode", headers=AUTH)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"


def test_the_feed_pushes_the_watched_pages_latency_and_the_warehouses_figures(
    room: Process, warehouse: RunningService
) -> None:
    # Given a feed open with the token
    with feed(room, Authorization=f"Bearer {ADMIN_TOKEN}") as socket:
        # When visitors load the watched page through the edge
        for _ in range(30):
            assert httpx.get(room.url + WATCHED).status_code == 200
        pushed = ticks(socket, 3)
        # (the ticks already queued may predate the last requests)
        while pushed[-1]["tourney"]["requests"] < 30 and len(pushed) < 10:
            pushed.append(json.loads(socket.recv(timeout=10)))

    # Then the ticks come at most about once a second, each with every figure
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(pushed)]
    assert all(gap > 0.5 for gap in gaps), gaps
    last = pushed[-1]
    # the watched page's p50 and p99 from the edge's own histogram
    assert last["tourney"]["requests"] >= 30
    assert 0 < last["tourney"]["p50_ms"] <= last["tourney"]["p99_ms"]
    # the real warehouse's capacity and its live split by source (nothing in flight)
    capacity = httpx.get(warehouse.url + "/stats/").json()["capacity"]
    assert last["warehouse"]["capacity"] == capacity
    assert (last["warehouse"]["new_path"], last["warehouse"]["legacy"]) == (0, 0)
    # the queue's depth from Redis; the orders service (nothing there) named as down
    assert last["queue"]["depth"] == 0
    assert last["down"] == ["orders"]
    assert last["mode"]["mode"] == "legacy"
    assert last["faults"] == []


def test_the_feed_refuses_a_visitor_without_the_token_and_another_sites_page(
    room: Process,
) -> None:
    with pytest.raises(InvalidStatus) as missing:
        feed(room)
    with pytest.raises(InvalidStatus) as other_site:
        feed(room, Authorization=f"Bearer {ADMIN_TOKEN}", Origin="http://evil.test")
    assert missing.value.response.status_code == 401
    assert other_site.value.response.status_code == 403


def test_one_sale_at_a_time_and_every_viewer_sees_how_it_ended(room: Process) -> None:
    # Given a presenter and a stack whose orders service does not answer
    client = signed_in(room)
    # When a sale is started, then another one at once
    first = client.post(CONTROL + "sale/start", json={"mode": "strangler", "units": 3})
    second = client.post(CONTROL + "sale/start", json={"mode": "legacy"})

    # Then the first runs the command it shows, the second is a 409
    assert first.status_code == 202, first.text
    assert first.json()["command"] == (
        "python -m loadtest run --no-start --mode strangler --units 3"
    )
    assert second.status_code == 409
    # And the feed shows it end as the terminal would (exit 2: no stack to sell on)
    with feed(room, Authorization=f"Bearer {ADMIN_TOKEN}") as socket:
        json.loads(socket.recv(timeout=10))
        deadline = time.monotonic() + 90
        while True:
            sale = json.loads(socket.recv(timeout=10))["sale"]
            if sale["state"] != "running":
                break
            assert time.monotonic() < deadline, sale
    assert (sale["state"], sale["code"], sale["who"]) == ("failed", 2, "Ana")
    assert any("orders" in line for line in sale["lines"]), sale["lines"]
    # And the next sale may start
    again = client.post(CONTROL + "sale/start", json={"units": 0})
    assert again.status_code == 422


def test_the_charting_library_is_served_by_the_edge_with_its_licence(
    room: Process,
) -> None:
    script = httpx.get(admin_url(room) + CONTROL + "static/uPlot.iife.min.js")
    style = httpx.get(admin_url(room) + CONTROL + "static/uPlot.min.css")
    escape = httpx.get(admin_url(room) + CONTROL + "static/../access.py")
    assert script.status_code == style.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "uPlot" in script.text
    assert escape.status_code in (400, 404)
    licence = ROOT / "edge_router/control_room/static/vendor/uPlot-LICENSE.txt"
    assert "The MIT License" in licence.read_text()


def test_the_public_port_does_not_serve_the_control_room(room: Process) -> None:
    # Given the token; when the control room is asked for on the public port
    page = httpx.get(room.url + CONTROL, headers=AUTH)
    action = httpx.post(
        room.url + CONTROL + "mode", json={"mode": "strangler"}, headers=AUTH
    )
    # Then it is not there: only the admin listener (loopback) serves it
    assert (page.status_code, action.status_code) == (404, 404)
    assert httpx.get(room.url + "/_edge/healthz").json()["mode"] == "legacy"
