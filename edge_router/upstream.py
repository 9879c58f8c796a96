"""The edge's HTTP client to its origins: one aiohttp session per worker.

Chosen by measurement (README, "Edge router"): httpx's pool served a few hundred
requests a second under 64 connections where aiohttp served thousands. The session
is set up for a proxy, not for a browser-like client:

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

import aiohttp

# Headers aiohttp would add by itself to every request.
_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
# Bytes aiohttp reads from the socket into the response stream at once: the small
# pages of the shop arrive in one read, big downloads in few.
READ_BUFSIZE = 256 * 1024


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
