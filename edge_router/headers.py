"""Headers across the edge: hop-by-hop stripped, forwarding headers set, tracing.

Request headers come from the ASGI scope (lower-case byte names); response headers
from aiohttp's raw headers. Both stay lists of pairs, so repeated headers (several
`Set-Cookie`) pass through as they came.
"""

from __future__ import annotations

import os

# RFC 9110 7.6.1, plus the legacy ones proxies still see.
HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
        b"proxy-connection", b"te", b"trailer", b"trailers", b"transfer-encoding",
        b"upgrade",
    }
)  # fmt: skip
# Replaced by the edge rather than passed on.
_REPLACED = frozenset({b"x-forwarded-proto", b"x-forwarded-host", b"traceparent"})
# The request headers the edge reads for itself.
_READ = frozenset(
    {b"connection", b"host", b"content-length", b"cookie", b"transfer-encoding",
     b"traceparent", b"authorization", b"content-type"}
)  # fmt: skip
# A websocket handshake is the edge's own business with each side.
WEBSOCKET_HANDSHAKE = frozenset(
    {
        b"sec-websocket-key", b"sec-websocket-version",
        b"sec-websocket-extensions", b"sec-websocket-protocol", b"sec-websocket-accept",
        b"content-length",
    }
)  # fmt: skip


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(t.strip().lower() for t in value.split(b",") if t.strip())


def new_trace_id() -> str:
    return os.urandom(16).hex()


def trace_from(traceparent: bytes | None) -> str:
    """The trace id of a W3C `traceparent`, or a new one when absent or malformed."""
    if traceparent:
        parts = traceparent.split(b"-")
        if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != b"0" * 32:
            try:
                int(parts[1], 16)
                return parts[1].decode("ascii")
            except ValueError:
                pass
    return new_trace_id()


def request_headers(
    scope_headers: list[tuple[bytes, bytes]],
    *,
    client_ip: str,
    scheme: str,
    skip: frozenset[bytes] = frozenset(),
) -> tuple[list[tuple[bytes, bytes]], dict[bytes, bytes], str]:
    """(headers for the origin, the request headers the edge reads, the trace id).

    The trace id comes from the visitor's W3C `traceparent` or is new; the origin
    gets a `traceparent` with the edge as the parent span.

    Host is kept: the origin sees the host the visitor asked for (Django checks it
    against ALLOWED_HOSTS, and the CSRF Origin check compares it with Origin).
    """
    out: list[tuple[bytes, bytes]] = []
    seen: dict[bytes, bytes] = {}
    forwarded_for = b""
    dropped: frozenset[bytes] = HOP_BY_HOP
    for name, value in scope_headers:
        if name in _READ:
            seen[name] = value
            if name == b"connection":
                dropped = dropped | _connection_tokens(value)
    for name, value in scope_headers:
        if name in dropped or name in skip:
            continue
        if name in _REPLACED:
            continue
        if name == b"x-forwarded-for":
            forwarded_for = value
            continue
        out.append((name, value))
    client = client_ip.encode("latin-1")
    out.append(
        (
            b"x-forwarded-for",
            forwarded_for + b", " + client if forwarded_for else client,
        )
    )
    out.append((b"x-forwarded-proto", scheme.encode("latin-1")))
    host = seen.get(b"host")
    if host is not None:
        out.append((b"x-forwarded-host", host))
    trace_id = trace_from(seen.get(b"traceparent"))
    span = os.urandom(8).hex()
    out.append((b"traceparent", f"00-{trace_id}-{span}-01".encode()))
    return out, seen, trace_id


# The edge's server writes its own Date and Server (as nginx does).
_RESPONSE_REPLACED = HOP_BY_HOP | {b"date", b"server"}


def response_headers(
    raw: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]],
    extra: list[tuple[bytes, bytes]],
) -> list[tuple[bytes, bytes]]:
    """The origin's headers minus hop-by-hop ones, then the edge's own."""
    dropped: frozenset[bytes] = _RESPONSE_REPLACED
    for name, value in raw:
        if name.lower() == b"connection":
            dropped = dropped | _connection_tokens(value)
    out = [(n, v) for n, v in raw if n.lower() not in dropped]
    out.extend(extra)
    return out


def cookie_value(cookie_header: bytes | None, name: str) -> str | None:
    if not cookie_header:
        return None
    prefix = name + "="
    for part in cookie_header.decode("latin-1").split(";"):
        part = part.strip()
        if part.startswith(prefix):
            return part[len(prefix) :]
    return None
