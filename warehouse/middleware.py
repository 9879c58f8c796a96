"""Every write to the warehouse needs the internal token, whatever its route.

Checked before routing, so a route added later cannot forget it, and before the body
is read. Without it, any local process, or a page in an operator's browser posting a
cross-site form, could pack an order or reset the measuring window: a browser never
adds an `Authorization` header to a cross-site request of its own accord.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from common.auth import bearer_token_check
from common.errors import ApplicationError, error_response

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def internal_token_check(request: HttpRequest) -> None:
    """401 without `Authorization: Bearer <INTERNAL_API_TOKEN>`, 403 with another."""
    bearer_token_check(
        request=request, expected=settings.INTERNAL_API_TOKEN, realm="warehouse"
    )


class WritesNeedTokenMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if request.method not in SAFE_METHODS:
            try:
                internal_token_check(request)
            except ApplicationError as refusal:
                return error_response(refusal)
        return self.get_response(request)
