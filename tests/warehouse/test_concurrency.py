"""Many requests at once against the real process: idempotency and the capacity gate."""

from __future__ import annotations

import pytest

from tests.warehouse.conftest import WarehouseProcess
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
    refs = [new_order_ref() for _ in range(12)]

    # When 12 different orders arrive at once
    responses = post_concurrently(
        f"{warehouse.url}/fulfilments/", [order_payload(ref) for ref in refs]
    )

    # Then each is either fulfilled or refused with a Retry-After, some of each
    by_ref = dict(zip(refs, responses, strict=True))
    created = [ref for ref, r in by_ref.items() if r.status_code == 201]
    refused = [ref for ref, r in by_ref.items() if r.status_code == 503]
    assert len(created) + len(refused) == 12, [r.status_code for r in responses]
    assert created
    assert refused
    for ref in refused:
        assert by_ref[ref].headers["Retry-After"] == "1"
        assert by_ref[ref].json()["error"] == "at_capacity"
        assert by_ref[ref].json()["detail"]

    # And the stats agree with the answers, and never exceeded the capacity
    with warehouse.client() as client:
        stats = client.get("/stats/").json()
    assert stats["capacity"] == 2
    assert 1 <= stats["peak_in_flight"] <= 2
    assert stats["in_flight"] == 0
    assert stats["refused"] == len(refused)
    assert stats["fulfilled"] == len(created)

    # And the refused orders wrote a refusal each and no fulfilment
    for ref in refused:
        assert warehouse.fulfillment_count(ref) == 0
        assert warehouse.refusal_count(ref) == 1
    for ref in created:
        assert warehouse.fulfillment_count(ref) == 1
        assert warehouse.refusal_count(ref) == 0


def test_refused_order_can_be_retried_once_there_is_room(
    warehouse: WarehouseProcess,
) -> None:
    # Given an order refused during a flood
    refs = [new_order_ref() for _ in range(8)]
    responses = post_concurrently(
        f"{warehouse.url}/fulfilments/", [order_payload(ref) for ref in refs]
    )
    refused = [
        ref for ref, r in zip(refs, responses, strict=True) if r.status_code == 503
    ]
    assert refused

    # When it is retried after the flood
    with warehouse.client() as client:
        retry = client.post("/fulfilments/", json=order_payload(refused[0]))

    # Then it is fulfilled
    assert retry.status_code == 201
    assert warehouse.fulfillment_count(refused[0]) == 1
