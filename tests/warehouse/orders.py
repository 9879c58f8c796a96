"""Building and sending fulfilment requests in the warehouse tests."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from tests.support.stack import INTERNAL_AUTH


def new_order_ref() -> str:
    return f"T-{uuid.uuid4().hex[:16]}"


def order_payload(
    order_ref: str, lines: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    if lines is None:
        lines = [{"sku": "ROD-001", "quantity": 1}, {"sku": "REEL-002", "quantity": 2}]
    return {"order_ref": order_ref, "lines": lines}


def post_concurrently(
    url: str, payloads: Sequence[dict[str, Any]]
) -> list[httpx.Response]:
    """POST every payload to url at once, one thread and connection each."""
    barrier = threading.Barrier(len(payloads))
    responses: list[httpx.Response | None] = [None] * len(payloads)
    errors: list[BaseException] = []

    def send(index: int, payload: dict[str, Any]) -> None:
        try:
            with httpx.Client(timeout=30.0, headers=INTERNAL_AUTH) as client:
                barrier.wait(timeout=30)
                responses[index] = client.post(url, json=payload)
        except BaseException as exc:  # surfaced below, in the test's thread
            errors.append(exc)

    threads = [
        threading.Thread(target=send, args=(i, p)) for i, p in enumerate(payloads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert all(r is not None for r in responses)
    return [r for r in responses if r is not None]
