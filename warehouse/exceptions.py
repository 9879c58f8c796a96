"""Domain errors of the warehouse; views map each to one JSON answer.

Every error body is `{"error": <code>, "detail": <human message>}`.
"""

from __future__ import annotations


class WarehouseError(Exception):
    """Base of every error the warehouse answers on purpose."""

    status = 400
    code = "bad_request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    @property
    def headers(self) -> dict[str, str]:
        return {}


class MalformedJson(WarehouseError):
    status = 400
    code = "malformed_json"


class InvalidRequest(WarehouseError):
    """The JSON parsed but is not a valid fulfilment request."""

    status = 400
    code = "invalid_request"


class UnsupportedMediaType(WarehouseError):
    status = 415
    code = "unsupported_media_type"


class PayloadTooLarge(WarehouseError):
    status = 413
    code = "payload_too_large"


class OrderRefConflict(WarehouseError):
    """The order_ref was already fulfilled with other lines."""

    status = 409
    code = "order_ref_conflict"


class AtCapacity(WarehouseError):
    """Every packing slot is taken: come back in a moment."""

    status = 503
    code = "at_capacity"
    retry_after_seconds = 1

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_seconds)}


class NotAuthenticated(WarehouseError):
    """No bearer token on an endpoint that wants one."""

    status = 401
    code = "not_authenticated"

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'Bearer realm="warehouse"'}


class Forbidden(WarehouseError):
    status = 403
    code = "forbidden"
