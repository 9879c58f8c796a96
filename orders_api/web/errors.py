"""Error pages and Django's error handlers: a page for browsers, JSON under /api/."""

from __future__ import annotations

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils.deprecation import MiddlewareMixin

from common.errors import ApplicationError, error_response
from common.redis_client import REDIS_FAULTS, RedisUnavailable

logger = logging.getLogger(__name__)
# A connection PostgreSQL closed under us (a restart, `faults set
# orders.db_terminate=1`) or a server that does not answer: worth a retry.
DATABASE_FAULTS: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


class DatabaseUnavailable(RedisUnavailable):
    """The database dropped or refused the connection: nothing was written (the
    transaction rolled back with it); the same answer as a Redis fault (503,
    Retry-After, "please try again"), under its own code."""

    code = "database_unavailable"


def error_page(request: HttpRequest, error: ApplicationError) -> HttpResponse:
    response = render(
        request,
        "orders_api/error.html",
        {"status": error.status_code, "message": error.detail, "code": error.code},
        status=error.status_code,
    )
    for name, value in error.headers.items():
        response[name] = value
    return response


class RedisFaultMiddleware(MiddlewareMixin):
    """Redis down or hanging, wherever a request met it: 503 + Retry-After (JSON
    under /api/, the error page elsewhere), never a 500. The client's timeouts
    (common/redis_client.py) make that about a second, not a held thread; when
    Redis is back the next request uses it (a lost counter is rebuilt on first use).
    A database connection lost mid-request is the same kind of fault: a 503 too
    (Django drops the broken connection; the next request opens a new one).
    """

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponse | None:
        error: ApplicationError
        if isinstance(exception, REDIS_FAULTS):
            error = RedisUnavailable()
        elif isinstance(exception, DATABASE_FAULTS):
            error = DatabaseUnavailable()
        else:
            return None
        logger.warning(
            "%s: %s %s: %r", error.code, request.method, request.path, exception
        )
        if request.path.startswith("/api/"):
            return error_response(error)
        return error_page(request, error)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    return render(
        request,
        "orders_api/error.html",
        {
            "status": 403,
            "code": "csrf",
            "message": "Your form expired or came from elsewhere. Nothing was ordered; "
            "please reload the page and try again.",
        },
        status=403,
    )


def _handler(status: int, message: str) -> Any:
    def handler(request: HttpRequest, exception: Exception | None = None) -> Any:
        if request.path.startswith("/api/"):
            code = {400: "bad_request", 403: "forbidden", 404: "not_found"}
            return JsonResponse(
                {"error": code.get(status, "server_error"), "detail": message},
                status=status,
            )
        return render(
            request,
            "orders_api/error.html",
            {"status": status, "message": message, "code": ""},
            status=status,
        )

    return handler


bad_request = _handler(400, "That request was malformed. Nothing was ordered.")
permission_denied = _handler(403, "You may not see that.")
not_found = _handler(404, "That one got away: there is nothing here.")
server_error = _handler(500, "Something broke on our side; please try again.")
