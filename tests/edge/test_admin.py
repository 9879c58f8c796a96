"""The edge's own endpoints: health, metrics, routes and mode, and their bad input,
on both engines (the nginx engine's health answered by each nginx worker, the rest
by its control plane).

All but the health check are on the admin listener (127.0.0.1:EDGE_ADMIN_PORT); the
public port answers only the health check.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.edge import (
    ADMIN_TOKEN,
    Process,
    admin_url,
    engine_of,
    raw_request,
    set_mode,
)

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def edge(any_edge: Process) -> Process:
    return any_edge


def _count(text: str, series: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(series + " ")
    )


def test_healthz_says_the_worker_follows_a_mode(edge: Process) -> None:
    for mode in ["strangler", "legacy"]:
        # given the edge switched to a mode
        version = set_mode(edge, mode)
        # when each worker is asked (a new connection each time, so both answer)
        workers: set[int] = set()
        for _ in range(20):
            answer = httpx.get(edge.url + "/_edge/healthz")
            assert answer.status_code == 200
            doc = answer.json()
            # then every one says it follows exactly that mode, at that version
            assert doc["status"] == "ok"
            assert doc["redis"] == "ok"
            assert (doc["mode"], doc["version"]) == (mode, version)
            assert answer.headers["x-edge-route"] == "edge"
            workers.add(doc["worker"])
        assert len(workers) == 2, workers


def test_metrics_count_requests_per_route_and_origin_over_all_workers(
    edge: Process,
) -> None:
    # given requests on fresh connections, so both workers serve some
    series = 'edge_requests_total{code="200",origin="shop",route="default"}'
    histogram = 'edge_request_duration_seconds_{}{{origin="shop",route="default"}}'
    scraped = httpx.get(admin_url(edge) + "/_edge/metrics").text
    before = _count(scraped, series)
    counted = _count(scraped, histogram.format("count"))
    for _ in range(20):
        httpx.get(edge.url + "/shop/rods/")
    # when the metrics are scraped (nginx's counts reach them within a second)
    deadline = time.monotonic() + 5
    while True:
        answer = httpx.get(admin_url(edge) + "/_edge/metrics")
        assert answer.status_code == 200
        text = answer.text
        if _count(text, series) >= before + 20 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answer.headers["content-type"].startswith("text/plain")
    # then the counter and the histogram are there, by label, under the same names
    # on both engines
    assert _count(text, series) >= before + 20
    # and every one of them is in the latency histogram too (the nginx engine adds
    # a log line's observations at once: its count and sum must still add up)
    assert _count(text, histogram.format("count")) >= counted + 20
    assert (
        0
        < _count(text, histogram.format("sum"))
        < _count(text, histogram.format("count"))
    )
    assert (
        'edge_request_duration_seconds_bucket{le="0.005",origin="shop",route="default"}'
        in text
    )
    # and what is in flight: per route in the Python edge, per connection state in
    # nginx (its stub_status; nginx cannot say it per route)
    if engine_of(edge) == "python":
        assert "edge_requests_in_flight" in text
    else:
        assert 'edge_nginx_connections{state="active"}' in text


@pytest.mark.parametrize("path", ["/_edge/routes", "/_edge/mode"])
@pytest.mark.parametrize(
    "authorization", [None, "Bearer wrong-token", f"Basic {ADMIN_TOKEN}", "Bearer"]
)
def test_protected_endpoints_need_the_admin_token(
    edge: Process, path: str, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.get(admin_url(edge) + path, headers=headers)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="edge"'
    assert "admin token" in answer.json()["error"]


def test_routes_lists_the_table_and_the_mode_in_force(edge: Process) -> None:
    set_mode(edge, "legacy")
    doc = httpx.get(admin_url(edge) + "/_edge/routes", headers=AUTH).json()
    assert doc["mode"]["mode"] == "legacy"
    strangler = doc["profiles"]["strangler"]
    assert strangler[0]["kind"] == "deny"
    assert strangler[1] | {"origin_url": None} == {
        "name": "muskie-buy",
        "path": "/shop/rods/muskie-casting-rod/buy/",
        "methods": ["POST"],
        "origin": "orders",
        "origin_url": None,
        "timeout": 10.0,
        "max_body": 16384,
        "rate": "5/s",
        "burst": 10,
        "trace": 1.0,
        "kind": "proxy",
        "cache_control": None,
    }
    assert strangler[-1]["path"] == "/*"
    assert doc["listener"]["header_timeout"] > 0


def test_a_mode_change_through_the_api_reaches_every_worker(edge: Process) -> None:
    version = set_mode(edge, "canary", 25)
    doc = httpx.get(admin_url(edge) + "/_edge/mode", headers=AUTH).json()
    assert (doc["mode"], doc["percent"], doc["version"]) == ("canary", 25, version)
    set_mode(edge, "legacy")


@pytest.mark.parametrize(
    ("body", "content_type", "status", "message"),
    [
        (b'{"mode": "strangler"}', "text/plain", 415, "Content-Type: application/json"),
        (b'{"mode": "strangler"', "application/json", 400, "malformed JSON"),
        (b"\xff\xfe", "application/json", 400, "malformed JSON"),
        (b'["strangler"]', "application/json", 422, "expected an object"),
        (b'{"mode": "strangler", "why": 1}', "application/json", 422, "unknown fields"),
        (b'{"mode": "sideways"}', "application/json", 422, "mode must be one of"),
        (b"{}", "application/json", 422, "mode must be one of"),
        (b'{"mode": "canary"}', "application/json", 422, "canary needs a percent"),
        (
            b'{"mode": "canary", "percent": 101}',
            "application/json",
            422,
            "between 0 and 100",
        ),
        (
            b'{"mode": "canary", "percent": "10"}',
            "application/json",
            422,
            "whole number",
        ),
        (
            b'{"mode": "canary", "percent": 2.5}',
            "application/json",
            422,
            "whole number",
        ),
        (b'{"mode": "legacy", "percent": 5}', "application/json", 422, "canary only"),
        (b'{"mode": "' + b"x" * 5000 + b'"}', "application/json", 413, "at most 4096"),
    ],
)
def test_a_bad_mode_change_is_refused_precisely_and_changes_nothing(
    edge: Process, body: bytes, content_type: str, status: int, message: str
) -> None:
    # given the edge in legacy mode
    version = set_mode(edge, "legacy")
    # when a bad change is posted
    answer = httpx.post(
        admin_url(edge) + "/_edge/mode",
        content=body,
        headers={**AUTH, "Content-Type": content_type},
    )
    # then it is refused with a precise status and reason, and nothing changed
    assert answer.status_code == status
    assert message in answer.json()["error"]
    doc = httpx.get(admin_url(edge) + "/_edge/mode", headers=AUTH).json()
    assert (doc["mode"], doc["version"]) == ("legacy", version)


def test_an_unauthenticated_mode_change_is_refused(edge: Process) -> None:
    set_mode(edge, "legacy")
    answer = httpx.post(admin_url(edge) + "/_edge/mode", json={"mode": "strangler"})
    assert answer.status_code == 401
    assert httpx.get(edge.url + "/_edge/healthz").json()["mode"] == "legacy"


def test_wrong_methods_and_unknown_endpoints_are_refused(edge: Process) -> None:
    answer = httpx.delete(admin_url(edge) + "/_edge/mode", headers=AUTH)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD, POST"
    assert httpx.post(admin_url(edge) + "/_edge/healthz").status_code == 405
    missing = httpx.get(admin_url(edge) + "/_edge/secrets")
    assert missing.status_code == 404
    assert "/_edge/healthz" in missing.json()["error"]


def test_the_public_port_answers_only_the_health_check(edge: Process) -> None:
    # given the edge's public port, when a stranger asks for its admin endpoints,
    # with or without the token and in any spelling
    for path in [
        "/_edge/mode",
        "/_edge/metrics",
        "/_edge/routes",
        "/_edge/secrets",
        "//_edge//routes",
        "/shop/../_edge/mode",
        "/_edge/%6dode",
    ]:
        for method in ["GET", "POST"]:
            answer = raw_request(
                edge.bound_port, method, path, body=b"{}", headers=AUTH
            )
            # then it is the edge's own 404 (no origin), telling nothing
            assert answer.status == 404, (method, path)
            assert answer.body == b"Not found\n"
            assert "x-origin" not in answer.headers
    # and the health check is still there for load balancers
    assert httpx.get(edge.url + "/_edge/healthz").status_code == 200
    # and the admin listener is on loopback, where the mode can be switched
    assert admin_url(edge).startswith("http://127.0.0.1:")
    assert httpx.get(admin_url(edge) + "/_edge/mode", headers=AUTH).status_code == 200


def test_the_admin_listener_matches_on_the_normalised_path(edge: Process) -> None:
    # no spelling of /_edge/routes gets past the token check
    port = int(admin_url(edge).rsplit(":", 1)[1])
    for path in ["/_edge/routes/", "/_edge/%72outes"]:
        answer = raw_request(port, "GET", path)
        assert answer.status == 401, path
