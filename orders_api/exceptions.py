"""Domain errors of the orders service, on the common kit's ApplicationError.

Every error body is the kit's one shape, `{"error": <code>, "detail": <message>}`
(plus `fields` for validation errors), whatever raised it; DRF's handler is
common.errors.exception_handler. The generic ones (InvalidRequest, NotAuthenticated,
Forbidden, NotFound, InvalidEvent) are the kit's own: import them from common.errors.
"""

from __future__ import annotations

from common.errors import ApplicationError


class Replayable(ApplicationError):
    """A deterministic refusal: stored as its Idempotency-Key's response, replayed."""

    status_code = 409


class IdempotencyKeyMissing(ApplicationError):
    """POST /api/orders/ without an Idempotency-Key: a retry could order twice."""

    code = "idempotency_key_missing"


class IdempotencyKeyInvalid(ApplicationError):
    code = "idempotency_key_invalid"


class IdempotencyKeyReused(ApplicationError):
    """The key was first used with another request body."""

    status_code = 422
    code = "idempotency_key_reused"


class IdempotencyInProgress(ApplicationError):
    """The first request with this key has not finished yet."""

    status_code = 409
    code = "idempotency_in_progress"
    retry_after = 1


class IdempotencyClaimLost(ApplicationError):
    """The attempt outlived its lease and a retry took the key over; the retry's
    answer is the key's."""

    status_code = 409
    code = "idempotency_in_progress"
    retry_after = 1


class ClientSecretInvalid(ApplicationError):
    code = "client_secret_invalid"


class SaleNotOpen(Replayable):
    """No sale of the product is open (not yet, or closed): the same answer on a
    replay, even once one opens, as the first attempt was refused."""

    code = "sale_not_open"


class SoldOut(Replayable):
    code = "sold_out"


class InvalidOrderStatus(ApplicationError):
    """A status change the order's life cycle does not allow."""

    status_code = 409
    code = "invalid_order_status"


class InvalidSaleStatus(ApplicationError):
    """A status change the sale's life cycle does not allow."""

    status_code = 409
    code = "invalid_sale_status"


class RateLimited(ApplicationError):
    """Too many order attempts from one client in the window (Retry-After says when)."""

    status_code = 429
    code = "rate_limited"


class ServiceBusy(ApplicationError):
    """The counter kept being rebuilt under the request: try again in a moment."""

    status_code = 503
    code = "busy"
    retry_after = 1


class ShopUnavailable(ApplicationError):
    """The shop's internal API did not answer, or refused (sale open/close)."""

    status_code = 503
    code = "shop_unavailable"


class ShopRefused(ApplicationError):
    status_code = 409
    code = "shop_refused"


class UnitsGone(ApplicationError):
    """A failed order's units, given back to its sale, cannot be taken back: sold
    again, or the sale closed. Its dead letter must not be replayed (an oversell)."""

    status_code = 409
    code = "units_gone"
