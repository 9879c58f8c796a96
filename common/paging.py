"""The one parser of the `since/after/limit` paging of the internal listings.

    GET ...?since=<ISO 8601 with zone>[&after=<id>][&limit=<n>]

Keyset paging: items created since `since`, with an id above `after`, `limit` of them.
Every mistake is a 400 (InvalidRequest) saying exactly what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.http import QueryDict
from django.utils.dateparse import parse_datetime

from common.errors import InvalidRequest

PAGING_PARAMS = frozenset({"since", "after", "limit"})
MAX_AFTER = 2**62
DEFAULT_LIMIT = 1000


@dataclass(frozen=True)
class Page:
    since: datetime
    after: int
    limit: int


def _whole_number(
    query: Mapping[str, str], name: str, *, default: int, low: int, high: int
) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or not low <= int(raw) <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}.")
    return int(raw)


def page_parse(
    query: QueryDict,
    *,
    max_limit: int,
    default_limit: int = DEFAULT_LIMIT,
    other_params: frozenset[str] = frozenset(),
) -> Page:
    """The page a query asks for. `other_params` are the listing's own filters
    (the caller checks their values); any other parameter is refused."""
    unknown = sorted(set(query) - PAGING_PARAMS - other_params)
    if unknown:
        raise InvalidRequest(f"Unknown parameters: {', '.join(unknown)}.")
    if any(len(query.getlist(name)) > 1 for name in query):
        raise InvalidRequest("Give each parameter once.")
    try:
        since = parse_datetime(query.get("since", ""))
    except ValueError:
        since = None
    if since is None or since.tzinfo is None:
        raise InvalidRequest(
            "since must be an ISO 8601 date and time with a time zone."
        )
    after = _whole_number(query, "after", default=0, low=0, high=MAX_AFTER)
    limit = _whole_number(
        query, "limit", default=min(default_limit, max_limit), low=1, high=max_limit
    )
    return Page(since=since, after=after, limit=limit)


def next_after(ids: list[int], *, page: Page) -> int | None:
    """The `after` of the next page, or None when this one was the last."""
    return ids[-1] if ids and len(ids) == page.limit else None
