"""Django middleware shared by the services: headers every response gets."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from common.tracing.core import current_trace_id
from common.tracing.logs import ENVIRON_SPAN_ID, ENVIRON_TRACE_ID, NO_ID, current_ids

TRACE_ID_HEADER = "X-Trace-Id"
CSP_HEADER = "Content-Security-Policy"

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class ResponseHeaderMiddleware(ABC):
    """A middleware that only touches the response, in `tag`.

    Sync and async alike, so an ASGI service does not pay a thread hop for it.
    """

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    # The type: ignores below: one instance is sync or async depending on the
    # get_response it wraps, which the types (a union of both) cannot follow.
    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if self.is_async:
            return self.__acall__(request)  # type: ignore[return-value]
        response = self.get_response(request)
        return self.tag(response, request)  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)  # type: ignore[misc]
        return self.tag(response, request)

    @abstractmethod
    def tag(self, response: HttpResponseBase, request: HttpRequest) -> HttpResponseBase:
        """The response with this middleware's header set (each subclass's own)."""


class TraceIdMiddleware(ResponseHeaderMiddleware):
    """Every response names its trace in `X-Trace-Id` (when tracing is on).

    Put it first in MIDDLEWARE: the OpenTelemetry middleware is inserted before it
    and its span is still current here, and an answer made by a later middleware
    (a CSRF refusal, a redirect) gets the header too. The ids are also kept in the
    WSGI environ for gunicorn's access line, written once the span has ended
    (common/gunicorn_logging.py).
    """

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        trace_id, span_id = current_ids()
        if trace_id != NO_ID:
            request.META[ENVIRON_TRACE_ID] = trace_id
            request.META[ENVIRON_SPAN_ID] = span_id
        return super().__call__(request)

    def tag(self, response: HttpResponseBase, request: HttpRequest) -> HttpResponseBase:
        trace_id = current_trace_id()
        if trace_id:
            response.headers[TRACE_ID_HEADER] = trace_id
        return response


class ContentSecurityPolicyMiddleware(ResponseHeaderMiddleware):
    """Every HTML page carries settings.CSP_POLICY (docs/guides/security.md).

    Only HTML: the policy governs what a document may load and run, so JSON, CSS
    and images gain nothing from it. Near the top of MIDDLEWARE, so that error
    pages and CSRF refusals made by later middleware get it too. A view that sets
    its own policy keeps it. An empty CSP_POLICY sends none.
    """

    def __init__(self, get_response: GetResponse | AsyncGetResponse) -> None:
        super().__init__(get_response)
        self.policy: str = settings.CSP_POLICY

    def tag(self, response: HttpResponseBase, request: HttpRequest) -> HttpResponseBase:
        content_type = response.headers.get("Content-Type", "")
        if self.policy and content_type.startswith("text/html"):
            response.headers.setdefault(CSP_HEADER, self.policy)
        return response
