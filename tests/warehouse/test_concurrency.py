"""Many requests at once against the real process: idempotency and the capacity gate."""

from __future__ import annotations

import pytest

from tests.warehouse.conftest import WarehouseProcess, gate_held
from tests.warehouse.orders import new_order_ref, order_payload, post_concurrently


@pytest.mark.parametrize("process_fixture", ["warehouse", "roomy_warehouse"])
def test_concurrent_duplicates_make_exactly_one_fulfillment(
    request: pytest.FixtureRequest, process_fixture: str, order_ref: str
) -> None:
    process: WarehouseProcess = request.getfixturevalue(process_fixture)
    # Given one order
    payload = order_payload(order_ref)

    # When it is sent 20 times at once
    responses = post_concurrently(f"{process.url}/fulfilments/", [payload] * 20)

    # Then exactly one fulfilment exists and exactly one answer created it
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses.count(201) == 1, statuses
    assert process.fulfillment_count(order_ref) == 1
    # And every answer that is not a refusal carries that one fulfilment
    ids = {r.json()["id"] for r in responses if r.status_code in (200, 201)}
    assert len(ids) == 1
    assert process.refusal_count(order_ref) == statuses.count(503)
    if process.capacity >= len(responses):
        # With room for all, nobody is refused: the losers of the race get the winner
        assert statuses.count(200) == 19, statuses


def test_flood_is_refused_beyond_capacity(warehouse: WarehouseProcess) -> None:
    # Given a warehouse of capacity 2 with fresh stats
    with warehouse.client() as client:
        assert client.post("/stats/reset").status_code == 200
    refs = [new_order_ref() for _ in range(10)]

    # When 10 different orders arrive while both its slots are taken
    with gate_held(warehouse) as holders:
        responses = post_concurrently(
            f"{warehouse.url}/fulfilments/", [order_payload(ref) for ref in refs]
        )

    # Then every one of them is refused with a Retry-After
    assert [r.status_code for r in responses] == [503] * 10
    for response in responses:
        assert response.headers["Retry-After"] == "1"
        assert response.json()["error"] == "at_capacity"
        assert response.json()["detail"]

    # And the stats agree with the answers, and never exceeded the capacity
    with warehouse.client() as client:
        stats = client.get("/stats/").json()
    assert stats["capacity"] == 2
    assert stats["peak_in_flight"] == 2
    assert stats["in_flight"] == 0
    assert stats["refused"] == 10
    assert stats["fulfilled"] == 2

    # And the refused orders wrote a refusal each and no fulfilment
    for ref in refs:
        assert warehouse.fulfillment_count(ref) == 0
        assert warehouse.refusal_count(ref) == 1
    for ref in holders:
        assert warehouse.fulfillment_count(ref) == 1
        assert warehouse.refusal_count(ref) == 0


def test_refused_order_can_be_retried_once_there_is_room(
    warehouse: WarehouseProcess,
) -> None:
    # Given an order refused while the warehouse was full
    ref = new_order_ref()
    with gate_held(warehouse), warehouse.client() as client:
        refused = client.post("/fulfilments/", json=order_payload(ref))
    assert refused.status_code == 503

    # When it is retried once the slots are free again
    with warehouse.client() as client:
        retry = client.post("/fulfilments/", json=order_payload(ref))

    # Then it is fulfilled
    assert retry.status_code == 201
    assert warehouse.fulfillment_count(ref) == 1
