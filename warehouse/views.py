"""The warehouse's JSON API. Thin: read the request, call one service, render.

Every answer is JSON, errors included: `{"error": <code>, "detail": <message>}`.
"""

from __future__ import annotations

import functools
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils.dateparse import parse_datetime

from warehouse import selectors, services
from warehouse.admission import AdmissionStats
from warehouse.exceptions import (
    Forbidden,
    InvalidRequest,
    NotAuthenticated,
    PayloadTooLarge,
    UnsupportedMediaType,
    WarehouseError,
)
from warehouse.models import Fulfillment
from warehouse.validation import fulfillment_request_parse

View = Callable[[HttpRequest], HttpResponse]


def error_response(
    *, status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JsonResponse:
    return JsonResponse(
        {"error": code, "detail": detail}, status=status, headers=headers
    )


def api_view(*methods: str) -> Callable[[View], View]:
    """Allow only `methods` (405 otherwise) and answer WarehouseErrors as JSON."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest) -> HttpResponse:
            if request.method not in methods:
                allowed = ", ".join(methods)
                return error_response(
                    status=405,
                    code="method_not_allowed",
                    detail=f"{request.method} is not allowed here; use {allowed}.",
                    headers={"Allow": allowed},
                )
            try:
                return view(request)
            except WarehouseError as exc:
                return error_response(
                    status=exc.status,
                    code=exc.code,
                    detail=exc.detail,
                    headers=exc.headers,
                )

        return wrapper

    return decorate


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _json_body(request: HttpRequest) -> bytes:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the body as Content-Type: application/json.")
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if charset not in {"utf-8", "utf8"}:
        raise UnsupportedMediaType("A JSON body must be UTF-8.")
    limit = settings.WAREHOUSE_MAX_BODY_BYTES
    too_large = PayloadTooLarge(f"The body is larger than {limit} bytes.")
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        raise too_large
    try:
        body = request.body
    except RequestDataTooBig:
        raise too_large from None
    if len(body) > limit:
        raise too_large
    return body


def _fulfillment_json(fulfillment: Fulfillment) -> dict[str, Any]:
    return {
        "id": fulfillment.pk,
        "order_ref": fulfillment.order_ref,
        "lines": fulfillment.lines,
        "units": fulfillment.units,
        "status": "fulfilled",
        "created_at": _iso(fulfillment.created_at),
    }


def _stats_json(stats: AdmissionStats) -> dict[str, Any]:
    return {
        "capacity": stats.capacity,
        "in_flight": stats.in_flight,
        "peak_in_flight": stats.peak_in_flight,
        "fulfilled": stats.fulfilled,
        "refused": stats.refused,
        "since": _iso(stats.since),
        "peak_in_flight_by_source": stats.peak_in_flight_by_source,
    }


@api_view("GET", "POST")
def fulfilments_api(request: HttpRequest) -> HttpResponse:
    """POST: fulfil an order. GET (bearer token): the fulfilments since a moment."""
    if request.method == "GET":
        return _fulfillment_list(request)
    return _fulfillment_create(request)


def _fulfillment_create(request: HttpRequest) -> HttpResponse:
    data = fulfillment_request_parse(body=_json_body(request))
    outcome = services.fulfillment_create(order_ref=data.order_ref, lines=data.lines)
    if outcome.created:
        return JsonResponse(_fulfillment_json(outcome.fulfillment), status=201)
    return JsonResponse(
        _fulfillment_json(outcome.fulfillment),
        status=200,
        headers={"Idempotent-Replayed": "true"},
    )


def _token_check(request: HttpRequest) -> None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("Send Authorization: Bearer <token>.")
    expected = settings.INTERNAL_API_TOKEN.encode()
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise Forbidden("That token is not valid here.")


_LIST_PARAMS = frozenset({"since", "after", "limit"})


def _whole_number(query: QueryDict, name: str, default: int, high: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    low = 1 if name == "limit" else 0
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


def _list_query_parse(query: QueryDict) -> tuple[datetime, int, int]:
    unknown = sorted(set(query) - _LIST_PARAMS)
    if unknown:
        raise InvalidRequest(f"Unknown parameters: {', '.join(unknown)}.")
    if any(len(query.getlist(name)) > 1 for name in query):
        raise InvalidRequest("Give each parameter once.")
    try:
        since = parse_datetime(query.get("since", ""))
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise InvalidRequest("since must be an ISO 8601 date and time with a zone.")
    maximum = settings.MAX_FULFILMENTS_PER_PAGE
    after = _whole_number(query, "after", 0, 2**62)
    limit = _whole_number(query, "limit", 1000, maximum)
    return since, after, limit


def _fulfillment_list(request: HttpRequest) -> HttpResponse:
    _token_check(request)
    since, after, limit = _list_query_parse(request.GET)
    found = selectors.fulfillment_list(since=since, after_id=after, limit=limit)
    return JsonResponse(
        {
            "fulfilments": [_fulfillment_json(f) for f in found],
            "next_after": found[-1].pk if len(found) == limit else None,
        }
    )


@api_view("GET")
def stats_detail_api(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_stats_json(selectors.stats_get()))


@api_view("POST")
def stats_reset_api(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_stats_json(services.stats_reset()))


@api_view("GET")
def healthz_api(request: HttpRequest) -> HttpResponse:
    if selectors.database_ping():
        return JsonResponse({"status": "ok"})
    return JsonResponse(
        {
            "status": "unavailable",
            "error": "database_unavailable",
            "detail": "The database does not answer.",
        },
        status=503,
    )


# --- handlers for errors raised outside the views (urls.py wires them) ---------------


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(status=400, code="bad_request", detail="Bad request.")


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(status=403, code="forbidden", detail="Forbidden.")


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return error_response(
        status=404, code="not_found", detail=f"No endpoint at {request.path}."
    )


def server_error(request: HttpRequest) -> HttpResponse:
    return error_response(
        status=500, code="server_error", detail="The warehouse failed; see its log."
    )
