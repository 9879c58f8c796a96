"""Real processes for the edge's tests: two test origins, the edge in front of them,
and (for the tests that cross to it) the real shop with its warehouse."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.edge import ENGINES, Process, edge_process, origin_process
from tests.support.processes import RunningService, free_port
from tests.support.stack import shop_process, warehouse_process


@pytest.fixture(scope="session")
def reset_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def shop_origin() -> Iterator[Process]:
    with origin_process("shop") as origin:
        yield origin


@pytest.fixture(scope="session")
def orders_origin(reset_port: int) -> Iterator[Process]:
    with origin_process("orders", reset_port=reset_port) as origin:
        yield origin


@pytest.fixture(scope="session")
def edge(shop_origin: Process, orders_origin: Process) -> Iterator[Process]:
    """The edge with the project's own route table, in front of the test origins."""
    with edge_process(shop_origin.url, orders_origin.url) as running:
        yield running


@pytest.fixture(scope="session", params=ENGINES)
def any_edge(
    request: pytest.FixtureRequest, shop_origin: Process, orders_origin: Process
) -> Iterator[Process]:
    """The edge on each engine in turn, with the project's own table: the behaviour
    suites run against both."""
    with edge_process(
        shop_origin.url, orders_origin.url, engine=str(request.param)
    ) as running:
        yield running


@pytest.fixture(scope="session")
def warehouse() -> Iterator[RunningService]:
    with warehouse_process("edge_fulfillment", capacity=8, handling_ms=20) as service:
        yield service


@pytest.fixture(scope="session")
def shop(warehouse: RunningService) -> Iterator[RunningService]:
    with shop_process("edge_shop", warehouse_url=warehouse.url) as service:
        yield service


@pytest.fixture(scope="session")
def shop_edge(shop: RunningService, orders_origin: Process) -> Iterator[Process]:
    """The edge in front of the real shop (orders: the test origin until issue 4)."""
    with edge_process(shop.url, orders_origin.url) as running:
        yield running
