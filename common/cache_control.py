"""Every answer says how it may be cached (`Cache-Control`), so that nothing in
front of a service (a CDN, a corporate proxy, the browser) has to guess.

- A page for everyone says so with a lifetime: a view decorated `@cache_public(60)`
  answers `public, max-age=60`, unless this very answer turned out personal.
- Anything personal is `private, no-store`: the answer sets a cookie, used the CSRF
  token (a form), or read a session the visitor has (a basket count, a signed-in
  name). The session middleware then also says `Vary: Cookie`: a cache in front
  must key on the session cookie, or not store the page.
- Anything a view did not mark is `private, no-store` too: API answers (order
  writes, order status), errors, redirects after a POST.
- An answer that already carries a Cache-Control keeps it (static files: WhiteNoise).

The edge adds none of its own: a route table behaviour may set one
(`cache_control`), otherwise the origin's passes through.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from common.middleware import ResponseHeaderMiddleware

PERSONAL = "private, no-store"
_PUBLIC_ATTRIBUTE = "cache_public_max_age"
# Statuses a shared cache may keep for everyone (RFC 9111 heuristically cacheable
# ones a page view gives); anything else is no-store.
_SHAREABLE = frozenset({200, 203, 204, 300, 301, 404, 410})

View = TypeVar("View", bound=Callable[..., Any])


def cache_public(max_age: int) -> Callable[[View], View]:
    """Mark a view's page as the same for everyone, fresh for `max_age` seconds."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            response = view(*args, **kwargs)
            setattr(response, _PUBLIC_ATTRIBUTE, max_age)
            return response

        return wrapped  # type: ignore[return-value]

    return decorate


def response_personal(request: HttpRequest, response: HttpResponseBase) -> bool:
    """True when this answer holds something of this visitor's own."""
    if response.cookies or request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        return True
    session = getattr(request, "session", None)
    if session is None or not session.accessed:
        return False
    return bool(request.COOKIES.get(settings.SESSION_COOKIE_NAME)) or not (
        session.is_empty()
    )


def cache_control_for(request: HttpRequest, response: HttpResponseBase) -> str:
    max_age = getattr(response, _PUBLIC_ATTRIBUTE, None)
    if (
        max_age is None
        or response.status_code not in _SHAREABLE
        or response_personal(request, response)
    ):
        return PERSONAL
    return f"public, max-age={max_age}"


class CacheControlMiddleware(ResponseHeaderMiddleware):
    """Sets Cache-Control on every answer that has none (see the module).

    Put it above the session and CSRF middleware, so it sees the cookies they set.
    """

    def tag(self, response: HttpResponseBase, request: HttpRequest) -> HttpResponseBase:
        if "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = cache_control_for(request, response)
        return response
