"""The running stack for end-to-end tests: warehouse and shop under gunicorn."""

from __future__ import annotations

import pytest

from tests.support.stack import shop_process, warehouse_process


@pytest.fixture(scope="session")
def warehouse():
    with warehouse_process("e2e_fulfillment", capacity=8, handling_ms=50) as service:
        yield service


@pytest.fixture(scope="session")
def shop(warehouse):
    with shop_process("e2e_shop", warehouse_url=warehouse.url) as service:
        yield service
