"""Error pages and Django's error handlers: a page for browsers, JSON under /api/."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from common.errors import ApplicationError


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
