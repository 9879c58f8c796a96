"""A claim on an Idempotency-Key is leased: a request that died after claiming holds
its key only until the lease runs out, and a retry then takes it over, without ever
making a second order (the claim is checked when the order commits)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from orders_api.admission import counter
from orders_api.exceptions import IdempotencyClaimLost, IdempotencyInProgress
from orders_api.models import IdempotencyKey, Order, Sale
from orders_api.ordering.idempotency import fingerprint_of, idempotency_begin
from orders_api.ordering.services import order_place
from tests.orders_api.conftest import address_client, new_key, order_body

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/orders/"


def post(key: str) -> Any:
    return APIClient().post(URL, order_body(), format="json", HTTP_IDEMPOTENCY_KEY=key)


def claim_left_behind(key: str) -> IdempotencyKey:
    """The claim a request leaves when it dies after claiming: in progress, leased."""
    record = idempotency_begin(
        scope="POST /api/orders/",
        client=address_client(),
        key=key,
        fingerprint=fingerprint_of(method="POST", path=URL, payload=order_body()),
    )
    assert isinstance(record, IdempotencyKey)
    return record


def lease_runs_out(record: IdempotencyKey) -> None:
    IdempotencyKey.objects.filter(pk=record.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )


def test_a_claim_is_leased_for_the_configured_time(sale: Sale, settings: Any) -> None:
    settings.ORDERS_IDEMPOTENCY_LEASE_SECONDS = 7

    record = claim_left_behind(new_key())

    assert record.lease_expires_at is not None
    assert record.lease_expires_at - record.created_at == pytest.approx(
        timedelta(seconds=7), abs=timedelta(seconds=2)
    )


def test_a_claim_left_by_a_dead_request_is_taken_over_once_its_lease_runs_out(
    sale: Sale,
) -> None:
    # Given a request that claimed the key and died
    key = new_key()
    record = claim_left_behind(key)

    # When the client retries within the lease, it is told to come back
    early = post(key)
    assert early.status_code == 409
    assert early.json()["error"] == "idempotency_in_progress"
    assert early["Retry-After"] == "1"
    assert Order.objects.count() == 0

    # and once the lease ran out, the retry takes the key over and orders, once
    lease_runs_out(record)
    retry = post(key)
    assert retry.status_code == 202
    assert str(Order.objects.get().pk) == retry.json()["id"]
    again = post(key)
    assert again.status_code == 202
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == retry.json()
    assert Order.objects.count() == 1


def test_an_attempt_that_outlived_its_lease_places_no_second_order(
    sale: Sale,
) -> None:
    # Given a slow first attempt whose lease ran out and a retry that took over
    key = new_key()
    slow = claim_left_behind(key)
    lease_runs_out(slow)
    retry = post(key)
    assert retry.status_code == 202
    remaining = counter.counter_read(slug=sale.slug)

    # When the slow attempt comes back and places its order
    with pytest.raises(IdempotencyClaimLost):
        order_place(
            slug=sale.slug,
            quantity=1,
            email="angler@example.com",
            trace_id="0" * 32,
            idempotency=slow,
        )

    # Then its order was rolled back with its completion, its units given back
    assert Order.objects.count() == 1
    assert counter.counter_read(slug=sale.slug) == remaining
    assert post(key).json() == retry.json()


def test_two_retries_after_the_lease_take_it_over_once(sale: Sale) -> None:
    # Given a claim left behind, its lease out
    key = new_key()
    lease_runs_out(claim_left_behind(key))
    fingerprint = fingerprint_of(method="POST", path=URL, payload=order_body())

    def begin() -> object:
        return idempotency_begin(
            scope="POST /api/orders/",
            client=address_client(),
            key=key,
            fingerprint=fingerprint,
        )

    # When a retry takes it over, a second retry is told the key is in progress
    assert isinstance(begin(), IdempotencyKey)
    with pytest.raises(IdempotencyInProgress):
        begin()
