"""The Django services' server span, made by hand: one span a request, few attributes.

`instrument_django()` puts `ServerSpanMiddleware` first in MIDDLEWARE (tracing on
only). It replaces the official Django instrumentation, whose middleware cost every
request, sampled or not, three absolute URIs and three exclusion matches, a second
URL resolution for the span's name, the WSGI request attributes (eleven, made
before it knew whether the span records), the custom-header settings read from the
environment, and metrics instruments; a sampled request then carried 13 or 14
attributes to the exporter.

Here a request costs:

- **excluded** (health probes, static files, metrics, the URLs of
  OTEL_PYTHON_(DJANGO_)EXCLUDED_URLS):
  a path lookup (and the environment's patterns, matched as the instrumentation
  matched them, only when some are set); no context at all;
- **not sampled** by the edge (its `traceparent` says so): the parent's context made
  current, no span object (children follow it: their spans do not record, the
  `traceparent` sent on says "not sampled", logs and `X-Trace-Id` name the trace);
- **sampled**, or no `traceparent` (a service's own root, the sampler decides): one
  SERVER span with the attributes the trace readers use (observability/spans.py):
  `http.method`, `http.target` (the path; no query string, so no token), `http.route`
  and the span's name `<METHOD> <route>` once Django has resolved the URL,
  `http.status_code`, and an ERROR status for a 5xx or an exception; the headers
  `OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST`/`_RESPONSE` name (read
  once, at start-up), as the official instrumentation captured them (their secret
  values redacted on export: common/tracing/redaction.py).
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.wsgi import (
    collect_custom_request_headers_attributes,
    collect_custom_response_headers_attributes,
    wsgi_getter,
)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.http import (
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST,
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE,
    ExcludeList,
    get_custom_headers,
    parse_excluded_urls,
)

from common.tracing.core import (
    NEVER_TRACED_PATHS,
    NEVER_TRACED_PREFIXES,
    environment_excluded_urls,
    span_start,
)

# The instrumentation scope of the services' server spans.
TRACER = "common.tracing.django"
GetResponse = Callable[[HttpRequest], HttpResponseBase]
_NEVER = frozenset(NEVER_TRACED_PATHS)


def _environment_excluded() -> ExcludeList | None:
    named = environment_excluded_urls("DJANGO")
    return parse_excluded_urls(",".join(named)) if named else None


def request_excluded(request: HttpRequest, extra: ExcludeList | None) -> bool:
    """Never traced: our paths, then the environment's patterns (if any), matched
    against `scheme://host/path` as the official instrumentations match them."""
    path = request.path
    if path in _NEVER or path.startswith(NEVER_TRACED_PREFIXES):
        return True
    return extra is not None and extra.url_disabled(request.build_absolute_uri("?"))


def request_parent(request: HttpRequest) -> otel_context.Context | None:
    """The context the request continues; None when the edge sent no `traceparent`
    (the span is a root: the sampler decides)."""
    if "HTTP_TRACEPARENT" not in request.META:
        return None
    return propagate.extract(request.META, getter=wsgi_getter)


class ServerSpanMiddleware:
    """The request's SERVER span (see the module's docstring). First in MIDDLEWARE,
    so every later middleware's work and answer is inside it."""

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.extra_excluded = _environment_excluded()
        self.request_headers = bool(
            get_custom_headers(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST)
        )
        self.response_headers = bool(
            get_custom_headers(
                OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE
            )
        )

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request_excluded(request, self.extra_excluded):
            return self.get_response(request)
        parent = request_parent(request)
        if parent is not None:
            remote = trace.get_current_span(parent).get_span_context()
            if remote.is_valid and not remote.trace_flags.sampled:
                # The edge did not sample it: its context, no span of ours.
                token = otel_context.attach(parent)
                try:
                    return self.get_response(request)
                finally:
                    otel_context.detach(token)
        return self.spanned(request, parent)

    def spanned(
        self, request: HttpRequest, parent: otel_context.Context | None
    ) -> HttpResponseBase:
        method = request.method or "GET"
        span = span_start(
            TRACER,
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={"http.method": method, "http.target": request.path},
        )
        if self.request_headers and span.is_recording():
            span.set_attributes(collect_custom_request_headers_attributes(request.META))
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            response = self.get_response(request)
        except BaseException as error:
            if span.is_recording():
                span.record_exception(error)
                span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            raise
        else:
            if span.is_recording():
                response_note(span, request, response)
                if self.response_headers:
                    span.set_attributes(
                        collect_custom_response_headers_attributes(
                            list(response.items())
                        )
                    )
            return response
        finally:
            otel_context.detach(token)
            span.end()

    def process_exception(self, request: HttpRequest, exception: Exception) -> None:
        """A view's exception (Django turns it into a 500 answer before the span
        sees it): on the span, as the official middleware recorded it."""
        span = trace.get_current_span()
        if span.is_recording():
            span.record_exception(exception)


def response_note(
    span: trace.Span, request: HttpRequest, response: HttpResponseBase
) -> None:
    """The route Django resolved (the span's name) and the answer's status."""
    match = request.resolver_match
    route = match.route if match is not None else ""
    if route:
        span.update_name(f"{request.method} {route}")
        span.set_attribute("http.route", route)
    status = response.status_code
    span.set_attribute("http.status_code", status)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
