"""The warehouse over HTTP, one request at a time: fulfil, replay, stats, health."""

from __future__ import annotations

from datetime import datetime

import httpx

from tests.warehouse.conftest import WarehouseProcess, warehouse_process
from tests.warehouse.orders import order_payload


def test_new_order_is_fulfilled_and_recorded(
    warehouse: WarehouseProcess, order_ref: str
) -> None:
    # Given an order the warehouse has never seen
    payload = order_payload(order_ref)

    # When it is sent
    with warehouse.client() as client:
        response = client.post("/fulfilments/", json=payload)

    # Then it is fulfilled (201) and recorded once
    assert response.status_code == 201
    body = response.json()
    assert body["order_ref"] == order_ref
    assert body["lines"] == payload["lines"]
    assert body["units"] == 3
    assert body["status"] == "fulfilled"
    assert isinstance(body["id"], int)
    datetime.fromisoformat(body["created_at"])
    assert warehouse.fulfillment_count(order_ref) == 1
    assert warehouse.refusal_count(order_ref) == 0


def test_replay_answers_the_first_result_and_other_lines_conflict(
    warehouse: WarehouseProcess, order_ref: str
) -> None:
    # Given a fulfilled order
    payload = order_payload(order_ref)
    with warehouse.client() as client:
        first = client.post("/fulfilments/", json=payload)
        assert first.status_code == 201

        # When the same order is sent again, and again with its lines reordered
        replay = client.post("/fulfilments/", json=payload)
        reordered = client.post(
            "/fulfilments/",
            json=order_payload(order_ref, list(reversed(payload["lines"]))),
        )
        # And then with other lines under the same order_ref
        conflict = client.post(
            "/fulfilments/",
            json=order_payload(order_ref, [{"sku": "ROD-001", "quantity": 9}]),
        )

    # Then the replays get the first answer (200), never a second fulfilment
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert reordered.status_code == 200
    assert reordered.json() == first.json()
    # And the other lines are a 409 that writes nothing
    assert conflict.status_code == 409
    assert conflict.json()["error"] == "order_ref_conflict"
    assert conflict.json()["detail"]
    assert warehouse.fulfillment_count(order_ref) == 1


def test_stats_reset_starts_a_new_window_and_keeps_fulfillments(
    warehouse: WarehouseProcess, order_ref: str
) -> None:
    with warehouse.client() as client:
        # Given a fresh window with one fulfilled order in it
        client.post("/stats/reset")
        created = client.post("/fulfilments/", json=order_payload(order_ref))
        assert created.status_code == 201
        before = client.get("/stats/").json()
        assert before["fulfilled"] == 1
        assert before["peak_in_flight"] == 1

        # When the stats are reset
        reset = client.post("/stats/reset")

        # Then the counters start again from zero
        assert reset.status_code == 200
        after = client.get("/stats/").json()
        assert after == reset.json()
        assert after["capacity"] == warehouse.capacity
        # (and the configured handling time, which a reset leaves as it is)
        assert after["handling_ms"] == 300
        assert after["in_flight"] == 0
        assert after["peak_in_flight"] == 0
        assert after["fulfilled"] == 0
        assert after["refused"] == 0
        assert datetime.fromisoformat(after["since"]) > datetime.fromisoformat(
            before["since"]
        )

        # And the order is still known: a replay is a 200 that counts as nothing new
        replay = client.post("/fulfilments/", json=order_payload(order_ref))
        assert replay.status_code == 200
        assert replay.json()["id"] == created.json()["id"]
        assert client.get("/stats/").json()["fulfilled"] == 0
    assert warehouse.fulfillment_count(order_ref) == 1


def test_healthz_answers_ok_when_the_database_answers(
    warehouse: WarehouseProcess,
) -> None:
    # Given a running warehouse with its database / When asked for its health
    response = httpx.get(f"{warehouse.url}/healthz")

    # Then it is healthy
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_answers_503_without_its_database() -> None:
    # Given a warehouse whose database does not exist
    with warehouse_process(
        "test_wh_proc_missing", capacity=1, handling_ms=0, migrate=False
    ) as process:
        # When asked for its health
        response = httpx.get(f"{process.url}/healthz")

    # Then it says it is unavailable, in JSON
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert response.json()["error"] == "database_unavailable"
