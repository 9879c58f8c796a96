"""What a Django service's server span costs in one process: the official Django
instrumentation's middleware against ours (common/tracing/server_span.py).

    python -m bench.django_span_cost [--requests 3000] [--rounds 5]

One process, a minimal Django project (no database: one view with a route like
the shop's, answering 200), three WSGI handlers built from one settings object:
`none` (no tracing middleware), `official` (the middleware
`DjangoInstrumentor` inserts) and `ours` (`ServerSpanMiddleware`), each driven with
a WSGI environ whose `traceparent` is sampled (as a purchase's) or not (as a page
the edge did not sample). Tracing is set up as a service's (`tracing_setup`):
the spans go through the redaction to a temporary span store, and the export
thread's CPU counts (the process's CPU time, `time.process_time`, flushed at the
end of each batch). Prints microseconds of CPU a request, the median of the
rounds (their range in brackets), alternating the handlers round by round, and
each middleware's cost over `none`.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from bench.reports import machine_describe

TRACEPARENTS = {
    "sampled": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "unsampled": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
}
PATH = "/shop/rods/tourney-casting-rod/"
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def rod_page(request: HttpRequest, category: str, slug: str) -> HttpResponse:
    return HttpResponse(f"{category} {slug}", content_type="text/plain")


urlpatterns = [path("shop/<slug:category>/<slug:slug>/", rod_page)]


def _handlers() -> dict[str, WSGIApp]:
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        ROOT_URLCONF=__name__,
        ALLOWED_HOSTS=["*"],
        MIDDLEWARE=[],
        SECRET_KEY="bench",
        INSTALLED_APPS=[],
        LOGGING_CONFIG=None,
    )
    import django
    from django.core.handlers.wsgi import WSGIHandler
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    from common.tracing.django import SERVER_SPAN_MIDDLEWARE

    django.setup()
    handlers: dict[str, WSGIApp] = {"none": WSGIHandler()}
    settings.MIDDLEWARE = [SERVER_SPAN_MIDDLEWARE]
    handlers["ours"] = WSGIHandler()
    settings.MIDDLEWARE = []
    DjangoInstrumentor().instrument()
    handlers["official"] = WSGIHandler()
    return handlers


def _environ(traceparent: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": PATH,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8001",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "127.0.0.1:8001",
        "HTTP_USER_AGENT": "bench",
        "HTTP_TRACEPARENT": traceparent,
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": io.StringIO(),
    }


def _us_per_request(app: WSGIApp, traceparent: str, requests: int) -> float:
    from opentelemetry import trace

    def start_response(status: str, headers: Any, *_: Any) -> None:
        assert status.startswith("200"), status

    started = time.process_time()
    for _ in range(requests):
        b"".join(app(_environ(traceparent), start_response))
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    return (time.process_time() - started) / requests * 1e6


def django_us_per_request(requests: int, rounds: int) -> dict[str, list[float]]:
    os.environ["TRACES_DIR"] = tempfile.mkdtemp(prefix="bench-django-span-")
    os.environ["OTEL_SDK_DISABLED"] = "false"
    from common.tracing.core import tracing_setup

    tracing_setup("shop")
    handlers = _handlers()
    figures: dict[str, list[float]] = {}
    for sampling, traceparent in TRACEPARENTS.items():
        for app in handlers.values():
            _us_per_request(app, traceparent, 300)  # warm-up
        for _ in range(rounds):
            for name, app in handlers.items():
                figure = _us_per_request(app, traceparent, requests)
                figures.setdefault(f"{sampling} {name}", []).append(figure)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    figures = django_us_per_request(args.requests, args.rounds)
    median = {name: statistics.median(values) for name, values in figures.items()}
    for name, values in figures.items():
        print(
            f"{name:22}{median[name]:7.1f} us CPU a request"
            f"  ({min(values):.1f}-{max(values):.1f})"
        )
    for sampling in TRACEPARENTS:
        bare = median[f"{sampling} none"]
        for name in ("official", "ours"):
            extra = median[f"{sampling} {name}"] - bare
            print(f"{sampling} {name}: +{extra:.1f} us over none")
    machine_describe()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
