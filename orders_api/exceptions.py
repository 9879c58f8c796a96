"""Domain errors of the orders service and the ONE DRF handler that maps them to HTTP.

Every error body is `{"error": <code>, "detail": <message>}` (plus `fields` for
validation errors), whatever raised it: a service, DRF or Django.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response


class ApplicationError(Exception):
    """A request the service understood but will not carry out."""

    status_code = 400
    code = "invalid_request"
    # Stored as the response of an Idempotency-Key (a deterministic outcome).
    replayable = False
    retry_after: int | None = None

    def __init__(self, detail: str, *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


class InvalidInput(ApplicationError):
    code = "invalid_request"


class IdempotencyKeyMissing(ApplicationError):
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


class NotAuthenticated(ApplicationError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(ApplicationError):
    status_code = 403
    code = "forbidden"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class SaleNotOpen(ApplicationError):
    status_code = 409
    code = "sale_not_open"
    replayable = True


class SoldOut(ApplicationError):
    status_code = 409
    code = "sold_out"
    replayable = True


class InvalidOrderStatus(ApplicationError):
    """A status change the order's life cycle does not allow."""

    status_code = 409
    code = "invalid_order_status"


class RateLimited(ApplicationError):
    status_code = 429
    code = "rate_limited"


class ServiceBusy(ApplicationError):
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


class InvalidEvent(ApplicationError):
    """An event envelope that is not one this service understands."""

    code = "invalid_event"


_DRF_CODES: dict[type[drf.APIException], str] = {
    drf.ParseError: "malformed_json",
    drf.UnsupportedMediaType: "unsupported_media_type",
    drf.MethodNotAllowed: "method_not_allowed",
    drf.NotAcceptable: "not_acceptable",
    drf.NotFound: "not_found",
    drf.Throttled: "rate_limited",
}


def _flatten(detail: Any) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: one JSON shape for every error; None → a real 500."""
    if isinstance(exc, ApplicationError):
        return Response(exc.body(), status=exc.status_code, headers=exc.headers)
    if isinstance(exc, Http404):
        return Response({"error": "not_found", "detail": "Not found."}, status=404)
    if isinstance(exc, PermissionDenied):
        return Response({"error": "forbidden", "detail": "Forbidden."}, status=403)
    if isinstance(exc, RequestDataTooBig):
        # Django calls it a SuspiciousOperation (a 400); the edge and the shop say 413.
        body = {"error": "payload_too_large", "detail": "The body is too large."}
        return Response(body, status=413)
    if isinstance(exc, drf.ValidationError):
        detail = exc.detail
        body: dict[str, Any] = {"error": "invalid_request", "detail": _flatten(detail)}
        if isinstance(detail, dict):
            body["fields"] = detail
        return Response(body, status=400)
    if isinstance(exc, drf.APIException):
        code = _DRF_CODES.get(type(exc), "error")
        headers = {}
        if isinstance(exc, drf.MethodNotAllowed):
            view = context.get("view")
            if view is not None:
                headers["Allow"] = ", ".join(view.allowed_methods)
        return Response(
            {"error": code, "detail": _flatten(exc.detail)},
            status=exc.status_code,
            headers=headers,
        )
    return None
