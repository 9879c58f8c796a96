"""One error kit for every JSON API of the stack: one base, one body, one handler.

Every error answer, whatever raised it (a service, DRF, Django), has the body

    {"error": <machine code>, "detail": <human message>, ...extra fields}

An `ApplicationError` is a request the service understood but will not carry out;
each service subclasses it for its own errors (warehouse `AtCapacity`, shop
`OutOfStock`, ...). Plain Django views render one with `error_response`, or let
`json_view` do it; DRF views raise it and `exception_handler` renders it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse

if TYPE_CHECKING:
    # DRF is imported when its handler runs: settings modules import the event
    # contract (and so this module), and DRF's modules read settings.
    from rest_framework.exceptions import APIException
    from rest_framework.response import Response

View = Callable[..., HttpResponse]


class ApplicationError(Exception):
    """Base of every error a service answers on purpose."""

    status_code = 400
    code = "invalid_request"
    # Seconds a client should wait before trying again (sent as Retry-After).
    retry_after: int | None = None

    def __init__(
        self, detail: str, *, retry_after: int | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # Further fields of the body (e.g. `fields` of a validation error).
        self.extra = extra
        if retry_after is not None:
            self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}

    def body(self) -> dict[str, Any]:
        return error_body(code=self.code, detail=self.detail, **self.extra)


class InvalidRequest(ApplicationError):
    code = "invalid_request"


class MalformedJson(ApplicationError):
    code = "malformed_json"


class NotAuthenticated(ApplicationError):
    """No usable credentials: 401, with the challenge the client should answer."""

    status_code = 401
    code = "not_authenticated"

    def __init__(self, detail: str, *, realm: str = "api", **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.realm = realm

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer realm="{self.realm}"'}


class Forbidden(ApplicationError):
    status_code = 403
    code = "forbidden"


class NotFound(ApplicationError):
    status_code = 404
    code = "not_found"


class MethodNotAllowed(ApplicationError):
    status_code = 405
    code = "method_not_allowed"

    def __init__(self, method: str, allowed: tuple[str, ...]) -> None:
        self.allowed = ", ".join(allowed)
        super().__init__(f"{method} is not allowed here; use {self.allowed}.")

    @property
    def headers(self) -> dict[str, str]:
        return {"Allow": self.allowed}


class PayloadTooLarge(ApplicationError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(ApplicationError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidEvent(ApplicationError):
    """An event envelope that is not one this service understands."""

    code = "invalid_event"


def error_body(*, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """The one error body shape."""
    return {"error": code, "detail": detail, **extra}


def error_response(exc: ApplicationError) -> JsonResponse:
    """An ApplicationError as a plain Django JSON answer."""
    return JsonResponse(exc.body(), status=exc.status_code, headers=exc.headers)


def json_view(
    *methods: str, auth: Callable[[HttpRequest], None] | None = None
) -> Callable[[View], View]:
    """A plain Django JSON endpoint: `auth` first (it raises to refuse), then the
    method (405 with Allow), then the view; any ApplicationError becomes its answer."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if auth is not None:
                    auth(request)
                if request.method not in methods:
                    raise MethodNotAllowed(str(request.method), methods)
                return view(request, *args, **kwargs)
            except ApplicationError as exc:
                return error_response(exc)

        return wrapper

    return decorate


# DRF's own errors, by class name, and the code of the one body for each.
_DRF_CODES = {
    "ParseError": "malformed_json",
    "UnsupportedMediaType": "unsupported_media_type",
    "MethodNotAllowed": "method_not_allowed",
    "NotAcceptable": "not_acceptable",
    "NotFound": "not_found",
    "Throttled": "rate_limited",
    "NotAuthenticated": "not_authenticated",
    "AuthenticationFailed": "not_authenticated",
    "PermissionDenied": "forbidden",
}


def _flatten(detail: Any) -> str:
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    if isinstance(detail, dict):
        return " ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    return str(detail)


def _drf_error(exc: APIException, context: dict[str, Any]) -> Response:
    from rest_framework import exceptions as drf
    from rest_framework.response import Response

    if isinstance(exc, drf.ValidationError):
        detail = exc.detail
        extra = {"fields": detail} if isinstance(detail, dict) else {}
        body = error_body(code="invalid_request", detail=_flatten(detail), **extra)
        return Response(body, status=400)
    headers = {}
    if isinstance(exc, drf.MethodNotAllowed):
        view = context.get("view")
        if view is not None:
            headers["Allow"] = ", ".join(view.allowed_methods)
    code = _DRF_CODES.get(type(exc).__name__, "error")
    body = error_body(code=code, detail=_flatten(exc.detail))
    return Response(body, status=exc.status_code, headers=headers)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: one JSON shape for every error; None → a real 500."""
    from rest_framework.exceptions import APIException
    from rest_framework.response import Response

    if isinstance(exc, ApplicationError):
        return Response(exc.body(), status=exc.status_code, headers=exc.headers)
    if isinstance(exc, Http404):
        return Response(error_body(code="not_found", detail="Not found."), status=404)
    if isinstance(exc, PermissionDenied):
        return Response(error_body(code="forbidden", detail="Forbidden."), status=403)
    if isinstance(exc, RequestDataTooBig):
        # Django calls it a SuspiciousOperation (a 400); the edge and the shop say 413.
        body = error_body(code="payload_too_large", detail="The body is too large.")
        return Response(body, status=413)
    if isinstance(exc, APIException):
        return _drf_error(exc, context)
    return None
