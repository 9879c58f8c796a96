"""The common kit: one error body, one token check, one paging parser, one HTTP
client per process, one Celery settings block and one event contract."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
import redis
from celery import Celery
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.test import RequestFactory
from rest_framework import exceptions as drf

from common import events
from common.auth import bearer_token_check
from common.celery_settings import celery_settings
from common.env import ConfigurationError
from common.errors import (
    ApplicationError,
    InvalidEvent,
    InvalidRequest,
    error_response,
    exception_handler,
    json_view,
)
from common.http_client import LazyClient
from common.paging import next_after, page_parse
from common.settings import REDIS_URL

TOKEN = "s3cret-token"
rf = RequestFactory()


class AtCapacity(ApplicationError):
    status_code = 503
    code = "at_capacity"
    retry_after = 2


def _body(response: HttpResponse) -> dict[str, Any]:
    return json.loads(response.content)


def _token_check(request: HttpRequest) -> None:
    bearer_token_check(request=request, expected=TOKEN, realm="kit")


@json_view("GET", auth=_token_check)
def guarded(request: HttpRequest) -> HttpResponse:
    if request.GET.get("busy"):
        raise AtCapacity("Every slot is taken.")
    return JsonResponse({"ok": True})


def test_an_application_error_renders_the_one_body_with_its_headers() -> None:
    # given an error with an extra field and a retry delay
    exc = AtCapacity("Every slot is taken.", retry_after=5, slots=8)
    # when it is rendered for a plain Django view
    response = error_response(exc)
    # then the body is the one shape and Retry-After is sent
    assert response.status_code == 503
    assert _body(response) == {
        "error": "at_capacity",
        "detail": "Every slot is taken.",
        "slots": 8,
    }
    assert response.headers["Retry-After"] == "5"


def test_no_token_is_a_401_with_a_bearer_challenge() -> None:
    response = guarded(rf.get("/"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="kit"'
    assert _body(response)["error"] == "not_authenticated"


def test_another_scheme_is_a_401_too() -> None:
    response = guarded(rf.get("/", HTTP_AUTHORIZATION=f"Basic {TOKEN}"))
    assert response.status_code == 401


def test_a_wrong_token_is_a_403_without_a_challenge() -> None:
    response = guarded(rf.get("/", HTTP_AUTHORIZATION="Bearer not-it"))
    assert response.status_code == 403
    assert "WWW-Authenticate" not in response.headers
    assert _body(response) == {
        "error": "forbidden",
        "detail": "That token is not valid here.",
    }


def test_the_token_is_checked_before_the_method() -> None:
    assert guarded(rf.post("/")).status_code == 401
    response = guarded(rf.post("/", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"))
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert _body(response)["error"] == "method_not_allowed"


def test_the_right_token_reaches_the_view_and_its_errors_become_json() -> None:
    auth = f"Bearer {TOKEN}"
    assert _body(guarded(rf.get("/", HTTP_AUTHORIZATION=auth))) == {"ok": True}
    busy = guarded(rf.get("/?busy=1", HTTP_AUTHORIZATION=auth))
    assert busy.status_code == 503
    assert busy.headers["Retry-After"] == "2"


def test_the_drf_handler_gives_drf_errors_the_same_body() -> None:
    # given DRF's own errors and ours
    invalid = exception_handler(drf.ValidationError({"sku": ["Required."]}), {})
    parse = exception_handler(drf.ParseError("Bad JSON."), {})
    ours = exception_handler(AtCapacity("Full."), {})
    # then each is the one body
    assert invalid is not None
    assert invalid.status_code == 400
    assert invalid.data == {
        "error": "invalid_request",
        "detail": "sku: Required.",
        "fields": {"sku": ["Required."]},
    }
    assert parse is not None
    assert parse.status_code == 400
    assert parse.data == {"error": "malformed_json", "detail": "Bad JSON."}
    assert ours is not None
    assert ours.status_code == 503
    assert ours["Retry-After"] == "2"
    # and anything else is left to be a real 500
    assert exception_handler(RuntimeError("bug"), {}) is None


def _page(query: str, **kwargs: Any) -> Any:
    return page_parse(rf.get("/?" + query).GET, max_limit=500, **kwargs)


def test_a_page_is_read_with_its_defaults() -> None:
    page = _page("since=2024-05-01T10:00:00%2B00:00&after=7")
    assert (page.since.isoformat(), page.after, page.limit) == (
        "2024-05-01T10:00:00+00:00",
        7,
        500,
    )
    assert next_after([8, 9], page=_page("since=2024-05-01T10:00Z&limit=2")) == 9
    assert next_after([8], page=_page("since=2024-05-01T10:00Z&limit=2")) is None


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "since must be an ISO 8601 date and time with a time zone."),
        ("since=2024-05-01T10:00", "since must be an ISO 8601 date and time"),
        ("since=2024-05-01T10:00Z&limit=0", "limit must be a whole number from 1"),
        ("since=2024-05-01T10:00Z&limit=501", "from 1 to 500."),
        ("since=2024-05-01T10:00Z&after=-1", "after must be a whole number from 0"),
        ("since=2024-05-01T10:00Z&sku=A", "Unknown parameters: sku."),
        ("since=2024-05-01T10:00Z&limit=1&limit=2", "Give each parameter once."),
    ],
)
def test_a_bad_page_is_a_400_saying_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        _page(query)
    assert raised.value.status_code == 400
    assert message in raised.value.detail


def test_a_listings_own_filter_is_let_through() -> None:
    assert _page("since=2024-05-01T10:00Z&sku=A", other_params=frozenset({"sku"}))


def test_one_http_client_per_process_whatever_the_thread() -> None:
    lazy = LazyClient(max_connections=4, max_keepalive_connections=2, timeout=3.0)
    seen: list[object] = []
    threads = [threading.Thread(target=lambda: seen.append(lazy.get())) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen[0] is seen[1] is lazy.get()
    assert lazy.get().timeout.read == 3.0


def test_celery_settings_read_the_services_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ORDERS_VISIBILITY_TIMEOUT", "7200")
    values = celery_settings(
        broker_url="redis://x/1", env_prefix="ORDERS", default_queue="orders-events"
    )
    assert values["CELERY_BROKER_URL"] == "redis://x/1"
    assert values["CELERY_TASK_DEFAULT_QUEUE"] == "orders-events"
    assert values["CELERY_BROKER_TRANSPORT_OPTIONS"]["visibility_timeout"] == 7200
    assert values["CELERY_BROKER_TRANSPORT_OPTIONS"]["unacked_restore_interval"] == 10
    assert values["CELERY_TASK_ACKS_LATE"] is True
    assert values["CELERY_WORKER_PREFETCH_MULTIPLIER"] == 1
    monkeypatch.setenv("ORDERS_VISIBILITY_TIMEOUT", "0")
    with pytest.raises(ConfigurationError):
        celery_settings(broker_url="", env_prefix="ORDERS", default_queue="q")


def test_an_envelope_survives_its_round_trip() -> None:
    sent = events.envelope_new(
        type_=events.ORDER_ACCEPTED,
        source=events.ORDERS_SOURCE,
        data={"order_number": "A-1"},
        trace_id=events.trace_id_new(),
    )
    assert events.envelope_parse(json.loads(json.dumps(sent.as_json()))) == sent


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": 2}, "Only version 1"),
        ({"trace_id": "XYZ"}, "trace_id must be 32"),
        ({"type": "Orders"}, "type must be"),
        ({"time": "2024-05-01T10:00:00"}, "UTC offset"),
    ],
)
def test_a_bad_envelope_is_refused(change: dict[str, Any], message: str) -> None:
    raw = events.envelope_new(
        type_=events.ORDER_STARTED, source="fulfillment", data={}, trace_id="a" * 32
    ).as_json()
    with pytest.raises(InvalidEvent, match=message):
        events.envelope_parse({**raw, **change})


def test_a_traceparent_gives_its_trace_id_and_a_bad_one_a_new_one() -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    assert events.trace_id_from(f"00-{trace_id}-00f067aa0ba902b7-01") == trace_id
    assert events.trace_id_from("00-" + "0" * 32 + "-00f067aa0ba902b7-01") != "0" * 32
    assert events.trace_id_valid(events.trace_id_from("garbage"))


def test_each_event_type_goes_to_its_consumer(settings: Any) -> None:
    settings.FULFILLMENT_QUEUE = "fq"
    settings.ORDERS_EVENTS_QUEUE = "oq"
    assert events.route_for(events.ORDER_ACCEPTED) == (
        events.HANDLE_ORDER_ACCEPTED,
        "fq",
    )
    assert events.route_for(events.ORDER_FAILED) == (
        events.HANDLE_FULFILLMENT_EVENT,
        "oq",
    )
    with pytest.raises(InvalidEvent):
        events.route_for("billing.paid")


def test_the_celery_publisher_puts_the_envelope_on_the_named_queue() -> None:
    # given a Celery app on the real broker and a queue of our own
    app = Celery("kit-test", broker=REDIS_URL)
    queue = f"kit-test-{uuid.uuid4().hex}"
    envelope = {"id": "1", "type": events.ORDER_ACCEPTED}
    # when the publisher sends an event
    events.celery_publisher(app)(
        task=events.HANDLE_ORDER_ACCEPTED, envelope=envelope, queue=queue
    )
    # then the broker holds one message for that task, the envelope its one argument
    broker = redis.Redis.from_url(REDIS_URL)
    try:
        raw = broker.lpop(queue)
        assert isinstance(raw, bytes), raw
        message = json.loads(raw)
    finally:
        broker.delete(queue)
    assert message["headers"]["task"] == events.HANDLE_ORDER_ACCEPTED
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))
    assert (args, kwargs) == ([envelope], {})
    # and its printable arguments are the short summary, not Celery's repr
    assert message["headers"]["argsrepr"] == "[orders.order-accepted 1]"


def test_a_batch_is_summarised_by_its_count_types_and_ids() -> None:
    batch = [{"id": "1", "type": "a.b"}, {"id": "2", "type": "c.d"}]

    assert events.payload_summary(batch) == "[2 events: a.b 1, c.d 2]"


def test_importing_common_settles_the_idna_codec_before_any_thread_resolves() -> None:
    # Given fresh interpreters, one importing nothing and one importing `common`
    check = "import sys{}; print('encodings.idna' in sys.modules)"

    def idna_imported(extra: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", check.format(extra)],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()

    # Then Python alone leaves the codec to the first host name resolved, and
    # `common` (which every service imports first) has it imported already
    assert idna_imported("") == "False"
    assert idna_imported(", common") == "True"
