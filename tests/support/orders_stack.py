"""The new order path as real processes (common/harness/orders_stack.py), and a
poll for what the tests wait on."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from common.harness.orders_stack import OrdersStack, orders_stack

__all__ = ["OrdersStack", "orders_stack", "wait_until"]


def wait_until(
    predicate: Callable[[], Any], *, timeout: float = 60, what: str = "condition"
) -> Any:
    """Poll until `predicate()` is truthy; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
