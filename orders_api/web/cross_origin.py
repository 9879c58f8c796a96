"""The buy-now form's defence against cross-site forgery, for a form on a static page.

The sale's minisite is static (orders_api/sales/site.py): its form carries no CSRF
token, so the buy-now endpoint also takes the browser's own word that the POST comes
from a page of this site: `Sec-Fetch-Site: same-origin`, or an `Origin` equal to
this site's (Django's CSRF Origin check, and Go's `CrossOriginProtection`, read them
the same way). A browser says either on every POST a page makes; a cross-site page
cannot forge them. A request that says neither (no browser, or a very old one) gets
Django's token check, as the server-rendered page's form always did.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt, csrf_protect

from common.errors import Forbidden
from orders_api.web.errors import error_page

View = Callable[..., HttpResponse]


class CrossOriginRefused(Forbidden):
    code = "cross_origin"


def request_same_origin(request: HttpRequest) -> bool | None:
    """True: the browser says the request comes from this site; False: from
    another; None: it says nothing."""
    origin = request.headers.get("Origin")
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if origin is not None:
        own = f"{request.scheme}://{request.get_host()}"
        if origin != own and origin not in settings.CSRF_TRUSTED_ORIGINS:
            return False
    if fetch_site is not None and fetch_site != "none":
        return fetch_site == "same-origin"
    return True if origin is not None else None


def same_origin_or_csrf_token(view: View) -> View:
    """The browser's word that the POST is this site's, else Django's CSRF token."""
    with_token = csrf_protect(view)

    @wraps(view)
    def checked(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        same = request_same_origin(request)
        if same is None:
            return with_token(request, *args, **kwargs)
        if not same:
            refusal = CrossOriginRefused(
                "This form can only be sent from the shop's own pages."
            )
            return error_page(request, refusal)
        return view(request, *args, **kwargs)

    return csrf_exempt(checked)
