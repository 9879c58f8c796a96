"""The edge's aiohttp sessions: websockets to the origins, and the control room's
readings of the other services. Proxied HTTP requests use the edge's own pool
instead (edge_router/origin_client.py, docs/decisions/0010-edge-origin-client.md).

Chosen by measurement (docs/decisions/0001-edge-http-client.md): httpx's pool served
a few hundred requests a second under 64 connections where aiohttp served thousands.
The session is set up for a proxy, not for a browser-like client:

- no cookie jar (each visitor's cookies travel in its own request only), no
  decompression, no redirects followed (the proxy passes them on);
- no headers of aiohttp's own: no User-Agent, Accept, Accept-Encoding or default
  Content-Type; the origin sees the visitor's headers and the edge's forwarding ones;
- a pool per worker, capped per origin so that one stalled origin cannot take every
  connection from the other (websockets count too: they hold theirs while open);
- idle connections dropped after `keepalive` seconds, below the origins' own keep-alive
  (gunicorn: 2 s), so the edge rarely sends on a connection the origin is closing.
  When it does, aiohttp sends an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE,
  TRACE: RFC 9110 9.2.2) once more on a new connection, never a POST or PATCH.
"""

from __future__ import annotations

from collections.abc import Iterable

import aiohttp
from multidict import CIMultiDict

# Headers aiohttp would add by itself to every request.
_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_SKIP_AUTO_HEADERS: CIMultiDict[None] = CIMultiDict((h, None) for h in _AUTO_HEADERS)
# aiohttp's default, kept on purpose: 16, 64, 128 and 256 KiB moved a 200 MiB
# download through the edge at the same rate within the noise, and this bounds what
# one slow visitor's response keeps buffered (twice this).
READ_BUFSIZE = 64 * 1024


class ProxyRequest(aiohttp.ClientRequest):
    """aiohttp's request, without looking for default headers to add.

    A proxy adds none (`skip_auto_headers` names them all), but aiohttp still copies
    every request's headers to check them against those names: 4-5 µs a request,
    a tenth of its client's time here. The names to skip stay set, so a request
    body's payload adds no Content-Type either.
    """

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        self._skip_auto_headers = _SKIP_AUTO_HEADERS


def session_create(
    *, connections: int, per_origin: int, keepalive: float
) -> aiohttp.ClientSession:
    """The worker's session; create it inside the running loop (lifespan start)."""
    connector = aiohttp.TCPConnector(
        limit=connections,
        limit_per_host=per_origin,
        keepalive_timeout=keepalive,
        ttl_dns_cache=300,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=_AUTO_HEADERS,
        request_class=ProxyRequest,
        # Per behaviour instead (route_timeout), given with each request.
        timeout=aiohttp.ClientTimeout(total=None),
        read_bufsize=READ_BUFSIZE,
    )


def route_timeout(seconds: float) -> aiohttp.ClientTimeout:
    """A behaviour's `timeout`: for a connection (pool wait included), for the
    origin's response headers once the request is sent, and between body reads."""
    return aiohttp.ClientTimeout(
        total=None, connect=seconds, sock_connect=seconds, sock_read=seconds
    )
