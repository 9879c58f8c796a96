"""GET /fulfilments/: the fulfilments since a moment, for the sale run's reconciliation.

Read-only and token-protected (the internal token); paged by id; every malformed query
is a precise 400 in the warehouse's JSON error shape.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from warehouse.models import Fulfillment

pytestmark = pytest.mark.django_db

# The token this run gave the service (make test makes one per run).
TOKEN = settings.INTERNAL_API_TOKEN
AUTH: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}
SINCE = "2020-01-01T00:00:00Z"


def fulfil(ref: str, units: int = 1) -> Fulfillment:
    return Fulfillment.objects.create(
        order_ref=ref,
        lines=[{"sku": "ROD-MUSKIE", "quantity": units}],
        units=units,
        handling_ms=50,
    )


def test_fulfilments_since_a_moment_a_page_at_a_time(client: Client) -> None:
    # Given one fulfilment from yesterday and three from now
    old = fulfil("LF-OLD")
    Fulfillment.objects.filter(pk=old.pk).update(
        created_at=datetime.now(UTC) - timedelta(days=1)
    )
    since = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    new = [fulfil(f"MU-{n}", units=n) for n in (1, 2, 3)]

    # When the reconciliation reads them two at a time
    first = client.get("/fulfilments/", {"since": since, "limit": "2"}, **AUTH).json()
    second = client.get(
        "/fulfilments/",
        {"since": since, "limit": "2", "after": str(first["next_after"])},
        **AUTH,
    ).json()

    # Then it sees the three new ones, once each, with their lines
    seen = first["fulfilments"] + second["fulfilments"]
    assert [f["order_ref"] for f in seen] == [f.order_ref for f in new]
    assert seen[2]["units"] == 3
    assert seen[2]["lines"] == [{"sku": "ROD-MUSKIE", "quantity": 3}]
    assert second["next_after"] is None


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Basic eDp5"}, 401, "not_authenticated"),
        ({"HTTP_AUTHORIZATION": "Bearer nope"}, 403, "forbidden"),
    ],
    ids=["none", "basic", "wrong"],
)
def test_the_listing_wants_the_internal_token(
    client: Client, headers: dict[str, Any], status: int, code: str
) -> None:
    fulfil("MU-SECRET")

    response = client.get("/fulfilments/", {"since": SINCE}, **headers)

    assert response.status_code == status
    assert response.json()["error"] == code
    assert "MU-SECRET" not in response.content.decode()


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"since": "now"},
        {"since": "2020-01-01T00:00:00"},
        {"since": "2020-02-30T00:00:00Z"},
        {"since": SINCE, "limit": "0"},
        {"since": SINCE, "limit": "5001"},
        {"since": SINCE, "limit": "1e3"},
        {"since": SINCE, "after": "-5"},
        {"since": SINCE, "after": ""},
        {"since": SINCE, "order_ref": "MU-1"},
    ],
    ids=[
        "no-since",
        "since-word",
        "since-naive",
        "since-impossible",
        "limit-0",
        "limit-huge",
        "limit-exponent",
        "after-negative",
        "after-empty",
        "unknown",
    ],
)
def test_bad_listing_queries_are_400(client: Client, query: dict[str, Any]) -> None:
    response = client.get("/fulfilments/", query, **AUTH)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"]


def test_a_repeated_parameter_is_400(client: Client) -> None:
    response = client.get(f"/fulfilments/?since={SINCE}&since={SINCE}", **AUTH)

    assert response.status_code == 400
