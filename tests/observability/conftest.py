"""The traced stack for the trace tests: warehouse and shop under gunicorn, writing
their spans to a directory of this session's own, and one legacy purchase in it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from observability.model import Trace
from observability.purchase import Purchase, purchase_legacy
from observability.store import FileSpanStore, trace_wait
from tests.support.processes import RunningService
from tests.support.stack import shop_process, warehouse_process
from tests.support.tracing import traced_env


@dataclass(frozen=True)
class Placed:
    purchase: Purchase
    trace: Trace


@pytest.fixture(scope="session")
def traces_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("traces")


@pytest.fixture(scope="session")
def store(traces_dir) -> FileSpanStore:
    return FileSpanStore(traces_dir)


@pytest.fixture(scope="session")
def warehouse(traces_dir) -> RunningService:
    with warehouse_process("obs_fulfillment", env=traced_env(traces_dir)) as service:
        yield service


@pytest.fixture(scope="session")
def shop(traces_dir, warehouse) -> RunningService:
    env = traced_env(traces_dir)
    with shop_process("obs_shop", warehouse_url=warehouse.url, env=env) as service:
        yield service


def legacy_placed(shop: RunningService, store: FileSpanStore) -> Placed:
    """One legacy Muskie purchase, and its trace once every process has flushed."""
    purchase = purchase_legacy(shop.url)
    trace = trace_wait(
        store,
        purchase.trace_id,
        complete=lambda t: (
            t.missing_parents() <= {purchase.traceparent.span_id}
            and t.fulfilled_ns is not None
        ),
    )
    return Placed(purchase, trace)


@pytest.fixture(scope="session")
def legacy(shop, store) -> Placed:
    return legacy_placed(shop, store)
