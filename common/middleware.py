"""Django middleware shared by the services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from common.tracing.core import current_trace_id

TRACE_ID_HEADER = "X-Trace-Id"

GetResponse = Callable[[HttpRequest], HttpResponseBase]
AsyncGetResponse = Callable[[HttpRequest], Awaitable[HttpResponseBase]]


class TraceIdMiddleware:
    """Every response names its trace in `X-Trace-Id` (when tracing is on).

    Put it first in MIDDLEWARE: the OpenTelemetry middleware is inserted before it
    and its span is still current here, and an answer made by a later middleware
    (a CSRF refusal, a redirect) gets the header too. Sync and async alike, so an
    ASGI service does not pay a thread hop for it.
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
        return self._tag(response)  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.get_response(request)  # type: ignore[misc]
        return self._tag(response)

    @staticmethod
    def _tag(response: HttpResponseBase) -> HttpResponseBase:
        trace_id = current_trace_id()
        if trace_id:
            response.headers[TRACE_ID_HEADER] = trace_id
        return response
