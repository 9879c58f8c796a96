"""Domain errors of the warehouse: the common kit's errors and the warehouse's own.

Every error body is `{"error": <code>, "detail": <human message>}` (common/errors.py).
"""

from __future__ import annotations

from common.errors import (
    ApplicationError,
    Forbidden,
    InvalidRequest,
    MalformedJson,
    NotAuthenticated,
    PayloadTooLarge,
    UnsupportedMediaType,
)

__all__ = [
    "AtCapacity",
    "Forbidden",
    "InjectedFailure",
    "InvalidRequest",
    "MalformedJson",
    "NotAuthenticated",
    "OrderRefConflict",
    "PayloadTooLarge",
    "UnsupportedMediaType",
    "WarehouseDown",
]


class OrderRefConflict(ApplicationError):
    """The order_ref was already fulfilled with other lines."""

    status_code = 409
    code = "order_ref_conflict"


class AtCapacity(ApplicationError):
    """Every packing slot is taken: come back in a moment."""

    status_code = 503
    code = "at_capacity"
    retry_after = 1


class WarehouseDown(ApplicationError):
    """The `warehouse.down` fault is on (common/faults.py): no order is taken."""

    status_code = 503
    code = "warehouse_down"
    retry_after = 1


class InjectedFailure(ApplicationError):
    """The `warehouse.error_rate` fault picked this order: a 500, nothing packed."""

    status_code = 500
    code = "injected_failure"
