"""The exported nginx config, run by a real nginx, routes as the Python edge does.

The same table of cases and path spellings runs through the Python edge, through
nginx running the export (Debian's nginx-light) and through the nginx engine (nginx
driven by its control plane), all in front of the same two test origins.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.cases import PROFILE_CASES, variants
from tests.support.edge import (
    Process,
    edge_process,
    nginx_process,
    raw_request,
    set_mode,
    stand_in_site,
)
from tests.support.processes import ROOT, free_port

PROXIES = ["edge", "nginx", "engine"]


def exported(
    profile: str, shop: Process, orders: Process, port: int, **env: str
) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "edge", "export", "nginx",
         "--profile", profile, "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={
            "SHOP_URL": shop.url,
            "ORDERS_URL": orders.url,
            "SALE_SITE_DIR": stand_in_site(),
            "PATH": "/usr/bin:/bin",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def engine(shop_origin: Process, orders_origin: Process) -> Iterator[Process]:
    with edge_process(shop_origin.url, orders_origin.url, engine="nginx") as running:
        yield running


@pytest.fixture(scope="module", params=["legacy", "strangler"])
def proxies(
    request: pytest.FixtureRequest,
    edge: Process,
    engine: Process,
    shop_origin: Process,
    orders_origin: Process,
) -> Iterator[tuple[str, dict[str, int]]]:
    """(profile, {"edge": port, "nginx": port, "engine": port}) with every proxy on
    that profile."""
    profile = str(request.param)
    port = free_port()
    with nginx_process(
        exported(profile, shop_origin, orders_origin, port), port
    ) as nginx:
        set_mode(edge, profile)
        set_mode(engine, profile)
        yield (
            profile,
            {
                "edge": edge.bound_port,
                "nginx": nginx.bound_port,
                "engine": engine.bound_port,
            },
        )


def served(port: int, method: str, path: str) -> tuple[int, str, str]:
    answer = raw_request(port, method, path, body=b"{}" if method == "POST" else None)
    # A test origin names itself; a static origin's answer only has the edge's word.
    return (
        answer.status,
        answer.headers["x-edge-route"],
        answer.headers.get("x-origin") or answer.headers["x-edge-origin"],
    )


def expected_status(origin: str, path: str, kind: str, spelling: str) -> int:
    """200, but from a static origin whose files (as S3's keys) have the case they
    were given, and are no directories: a file's path with a trailing slash is 404."""
    if origin != "muskie-site":
        return 200
    if kind.endswith("-case") or (spelling.endswith("/") and not path.endswith("/")):
        return 404
    return 200


@pytest.mark.parametrize("proxy", PROXIES)
def test_every_case_and_spelling_reaches_the_same_behaviour_and_origin(
    proxies: tuple[str, dict[str, int]], proxy: str
) -> None:
    profile, ports = proxies
    for method, path, route, origin in PROFILE_CASES[profile]:
        # given a request and every other spelling of its path
        for kind, spelling in {"canonical": path, **variants(path)}.items():
            # when it goes through the proxy
            status, got_route, got_origin = served(ports[proxy], method, spelling)
            # then the behaviour and the origin are the canonical path's
            expected = expected_status(origin, path, kind, spelling)
            assert status == expected, (proxy, method, kind, spelling)
            assert (got_route, got_origin) == (route, origin), (
                proxy,
                method,
                kind,
                spelling,
            )


@pytest.mark.parametrize("proxy", PROXIES)
def test_both_refuse_an_oversized_body_and_a_burst_of_buys(
    proxies: tuple[str, dict[str, int]], proxy: str
) -> None:
    _, ports = proxies
    buy = "/shop/rods/muskie-casting-rod/buy/"
    big = raw_request(ports[proxy], "POST", buy, body=b"x" * 20000)
    assert big.status == 413
    assert big.headers["x-edge-route"] == "muskie-buy"
    assert big.body == b"Request body too large\n"
    # (the routing test before may have spent this client's tokens already)
    answers = [raw_request(ports[proxy], "POST", buy, body=b"q=1") for _ in range(40)]
    statuses = [answer.status for answer in answers]
    assert set(statuses) <= {200, 429}
    assert 429 in statuses
    for refused in (answer for answer in answers if answer.status == 429):
        assert refused.headers["x-edge-route"] == "muskie-buy"
        assert refused.headers["retry-after"]
        assert refused.body == b"Too many requests\n"


METHOD_SPLIT = """
[origins]
shop = { env = "SHOP_URL", default = "http://127.0.0.1:8001" }
orders = { env = "ORDERS_URL", default = "http://127.0.0.1:8002" }
[[profiles.legacy]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"
[[profiles.legacy]]
name = "posts"
path = "/a/*"
methods = ["POST"]
origin = "orders"
[[profiles.legacy]]
name = "narrow"
path = "/a/b/*"
origin = "orders"
[[profiles.legacy]]
name = "default"
path = "/*"
origin = "shop"
[[profiles.strangler]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"
[[profiles.strangler]]
name = "default"
path = "/*"
origin = "shop"
"""


def test_a_behaviour_for_some_methods_lets_the_others_reach_the_next_match(
    shop_origin: Process, orders_origin: Process, tmp_path: Path
) -> None:
    # given a POST-only behaviour, then a narrower one for every method
    table = tmp_path / "routes.toml"
    table.write_text(METHOD_SPLIT)
    port = free_port()
    config = exported(
        "legacy", shop_origin, orders_origin, port, EDGE_ROUTES_FILE=str(table)
    )
    with nginx_process(config, port) as nginx:
        # when requests of each method come, then the first behaviour that takes
        # both the path and the method serves each, as in the Python edge
        for method, path, route in [
            ("POST", "/a/b/c", "posts"),
            ("GET", "/a/b/c", "narrow"),
            ("GET", "/A/B", "narrow"),
            ("GET", "/a/x", "default"),
            ("PUT", "/a/x", "default"),
        ]:
            answer = raw_request(nginx.bound_port, method, path, body=b"{}")
            assert (answer.status, answer.headers["x-edge-route"]) == (200, route)
