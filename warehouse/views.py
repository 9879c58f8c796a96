"""The warehouse's JSON API. Thin: read the request, call one service, render.

Every answer is JSON, errors included: `{"error": <code>, "detail": <message>}`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse

from common.errors import error_body, json_view
from common.health import database_ping
from common.paging import next_after, page_parse
from warehouse import selectors, services
from warehouse.admission import AdmissionStats
from warehouse.exceptions import PayloadTooLarge, UnsupportedMediaType
from warehouse.faults import fault_refusals
from warehouse.middleware import internal_token_check
from warehouse.models import Fulfillment
from warehouse.validation import fulfillment_request_parse


def error_response(*, status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(error_body(code=code, detail=detail), status=status)


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
        # The configured pick-and-pack time: with the queue's concurrency, the rate
        # a backlog drains at (the sale run reports it against the measured one).
        "handling_ms": settings.WAREHOUSE_HANDLING_MS,
        "in_flight": stats.in_flight,
        "peak_in_flight": stats.peak_in_flight,
        "fulfilled": stats.fulfilled,
        "refused": stats.refused,
        "since": _iso(stats.since),
        "peak_in_flight_by_source": stats.peak_in_flight_by_source,
        # Orders refused by an injected fault (warehouse/faults.py), by error code.
        "fault_refusals": fault_refusals(),
        "in_flight_by_source": stats.in_flight_by_source,
    }


@json_view("GET", "POST")
def fulfilments_api(request: HttpRequest) -> HttpResponse:
    """POST: fulfil an order. GET: the fulfilments since a moment. Both need the
    internal token (POST: the middleware, as every write)."""
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


def _fulfillment_list(request: HttpRequest) -> HttpResponse:
    internal_token_check(request)
    page = page_parse(request.GET, max_limit=settings.MAX_FULFILMENTS_PER_PAGE)
    found = selectors.fulfillment_list(
        since=page.since, after_id=page.after, limit=page.limit
    )
    return JsonResponse(
        {
            "fulfilments": [_fulfillment_json(f) for f in found],
            "next_after": next_after([f.pk for f in found], page=page),
        }
    )


@json_view("GET")
def stats_detail_api(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_stats_json(selectors.stats_get()))


@json_view("POST")
def stats_reset_api(request: HttpRequest) -> HttpResponse:
    return JsonResponse(_stats_json(services.stats_reset()))


@json_view("GET")
def healthz_api(request: HttpRequest) -> HttpResponse:
    if database_ping():
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
