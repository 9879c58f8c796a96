"""The write path in-process: boundaries, the unique-constraint race, refusals."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from warehouse import admission, services
from warehouse.admission import Admission
from warehouse.exceptions import AtCapacity, OrderRefConflict
from warehouse.models import Fulfillment, Refusal
from warehouse.validation import (
    FulfillmentLine,
    fulfillment_request_parse,
)

LINES = (FulfillmentLine("ROD-001", 1), FulfillmentLine("REEL-002", 2))


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Admission:
    """A fresh process-wide gate of capacity 1 and no handling delay."""
    settings.WAREHOUSE_HANDLING_MS = 0
    fresh = Admission(capacity=1)
    monkeypatch.setattr(admission, "_admission", fresh)
    return fresh


def _lookup_misses_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first lookup misses, as if a concurrent insert had not committed yet."""
    real_lookup = services.fulfillment_get_by_order_ref
    calls: list[str] = []

    def lookup(*, order_ref: str) -> Fulfillment | None:
        calls.append(order_ref)
        return None if len(calls) == 1 else real_lookup(order_ref=order_ref)

    monkeypatch.setattr(services, "fulfillment_get_by_order_ref", lookup)


def test_largest_valid_request_is_accepted() -> None:
    # Given a request at every upper bound
    body = {
        "order_ref": "A" * 60 + ".:_-",
        "lines": [{"sku": "S" * 32, "quantity": 1000} for _ in range(50)],
    }

    # When it is parsed / Then it is accepted as sent
    parsed = fulfillment_request_parse(body=json.dumps(body).encode())
    assert parsed.order_ref == body["order_ref"]
    assert len(parsed.lines) == 50
    assert parsed.lines[0] == FulfillmentLine("S" * 32, 1000)


@pytest.mark.django_db
def test_concurrent_insert_losing_the_race_answers_the_winner(
    gate: Admission, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another request inserted this order_ref after we looked it up
    winner = Fulfillment.objects.create(
        order_ref="RACE-1",
        lines=[{"sku": "ROD-001", "quantity": 1}, {"sku": "REEL-002", "quantity": 2}],
        units=3,
        handling_ms=0,
    )
    _lookup_misses_once(monkeypatch)

    # When our insert hits the unique constraint
    outcome = services.fulfillment_create(order_ref="RACE-1", lines=LINES)

    # Then it resolves to the existing row: a replay, not an error, not a second row
    assert outcome.created is False
    assert outcome.fulfillment.pk == winner.pk
    assert Fulfillment.objects.filter(order_ref="RACE-1").count() == 1
    # And the slot was given back, and nothing new was counted as fulfilled
    stats = gate.snapshot()
    assert (stats.in_flight, stats.fulfilled) == (0, 0)


@pytest.mark.django_db
def test_losing_the_race_with_other_lines_is_a_conflict(
    gate: Admission, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another request inserted this order_ref, with other lines, after our lookup
    Fulfillment.objects.create(
        order_ref="RACE-2", lines=[{"sku": "X", "quantity": 5}], units=5, handling_ms=0
    )
    _lookup_misses_once(monkeypatch)

    # When our insert hits the unique constraint / Then it is a conflict
    with pytest.raises(OrderRefConflict):
        services.fulfillment_create(order_ref="RACE-2", lines=LINES)
    assert Fulfillment.objects.filter(order_ref="RACE-2").count() == 1
    assert gate.snapshot().in_flight == 0


@pytest.mark.django_db
def test_full_gate_refuses_records_a_refusal_and_writes_no_fulfillment(
    gate: Admission,
) -> None:
    # Given every slot taken
    assert gate.try_enter()

    # When an order arrives
    with pytest.raises(AtCapacity):
        services.fulfillment_create(order_ref="FULL-1", lines=LINES)

    # Then it is refused, recorded as a refusal, and not fulfilled
    assert not Fulfillment.objects.filter(order_ref="FULL-1").exists()
    refusal = Refusal.objects.get(order_ref="FULL-1")
    assert refusal.capacity == 1
    assert gate.snapshot().refused == 1


@pytest.mark.django_db
def test_replay_takes_no_capacity(
    gate: Admission, client: Client, settings: Settings
) -> None:
    auth = f"Bearer {settings.INTERNAL_API_TOKEN}"
    # Given a fulfilled order, then every slot taken
    first = client.post(
        "/fulfilments/",
        {"order_ref": "REPLAY-1", "lines": [{"sku": "A", "quantity": 1}]},
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )
    assert first.status_code == 201
    assert gate.try_enter()

    # When the same order is replayed
    replay = client.post(
        "/fulfilments/",
        {"order_ref": "REPLAY-1", "lines": [{"sku": "A", "quantity": 1}]},
        content_type="application/json",
        HTTP_AUTHORIZATION=auth,
    )

    # Then it is answered from the database although the warehouse is full
    assert replay.status_code == 200
    assert replay.json() == first.json()
    assert not Refusal.objects.exists()
