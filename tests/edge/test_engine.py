"""The nginx engine's control plane: a changed route table is served without a
restart, and a table it cannot use leaves the last one serving."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.edge import Process, edge_process

TABLE = """
[origins]
shop = {{ env = "SHOP_URL", default = "http://127.0.0.1:8001" }}
orders = {{ env = "ORDERS_URL", default = "http://127.0.0.1:8002" }}

[[profiles.legacy]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"

[[profiles.legacy]]
name = "{name}"
path = "/special/*"
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
origin = "orders"
"""


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(TABLE.format(name="special"))
    return path


@pytest.fixture
def engine(
    shop_origin: Process, orders_origin: Process, table: Path
) -> Iterator[Process]:
    with edge_process(
        shop_origin.url,
        orders_origin.url,
        engine="nginx",
        EDGE_ROUTES_FILE=str(table),
    ) as running:
        yield running


def _route(engine: Process) -> str:
    return httpx.get(engine.url + "/special/page").headers["x-edge-route"]


def _wait_for_route(engine: Process, route: str, seconds: float) -> float:
    started = time.monotonic()
    while _route(engine) != route:
        assert time.monotonic() - started < seconds, _route(engine)
        time.sleep(0.05)
    return time.monotonic() - started


def test_a_changed_route_table_is_served_within_a_second_or_two(
    engine: Process, table: Path
) -> None:
    # given the nginx engine serving a behaviour of the table
    assert _route(engine) == "special"
    # when the table file changes
    table.write_text(TABLE.format(name="renamed"))
    # then nginx serves the new table soon after, without a restart
    _wait_for_route(engine, "renamed", 3.0)
    assert httpx.get(engine.url + "/_edge/healthz").json()["engine"] == "nginx"


def test_a_table_that_cannot_be_used_leaves_the_last_one_serving(
    engine: Process, table: Path
) -> None:
    # given the nginx engine serving the table
    assert _route(engine) == "special"
    # when the table is changed to one that does not validate
    table.write_text(TABLE.format(name="Not A Name"))
    time.sleep(1.5)
    # then the last good table still serves, and the control plane says why
    assert _route(engine) == "special"
    assert "route table not taken" in engine.log()
    # and a good table after it is taken
    table.write_text(TABLE.format(name="fixed"))
    _wait_for_route(engine, "fixed", 3.0)
