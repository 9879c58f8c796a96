"""The sale board page: a sale's live figures (pushed on by websocket, live/)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from common.cache_control import cache_public
from common.errors import NotFound
from orders_api.sales import selectors
from orders_api.web.errors import error_page

# The board is pushed on live by websocket; a cache may keep the page a few seconds.
BOARD_MAX_AGE = 5


@require_safe
@cache_public(BOARD_MAX_AGE)
def sale_board(request: HttpRequest, slug: str) -> HttpResponse:
    sale = selectors.sale_current(slug=slug)
    if sale is None:
        return error_page(request, NotFound("No sale of that product has opened."))
    return render(
        request,
        "orders_api/board.html",
        {"sale": sale, "board": selectors.sale_board(sale=sale)},
    )
