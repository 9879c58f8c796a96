"""Headers across the edge: hop-by-hop stripped, forwarding headers set.

Request headers come from the ASGI scope (lower-case byte names); response headers
from aiohttp's raw headers. Both stay lists of pairs, so repeated headers (several
`Set-Cookie`) pass through as they came.
"""

from __future__ import annotations

# RFC 9110 7.6.1, plus the legacy ones proxies still see.
HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
        b"proxy-connection", b"te", b"trailer", b"trailers", b"transfer-encoding",
        b"upgrade",
    }
)  # fmt: skip
# `Connection` values that name no header but hop-by-hop ones: nothing more to drop.
_PLAIN_CONNECTION = frozenset({b"keep-alive", b"close"})
# Replaced by the edge rather than passed on.
_REPLACED = frozenset({b"x-forwarded-proto", b"x-forwarded-host"})
# Written by the tracing instrumentation from the edge's own span, when tracing is on.
TRACE_CONTEXT = frozenset({b"traceparent", b"tracestate"})
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
# Built once: the scheme header of nearly every request.
_PROTO = {s: ("x-forwarded-proto", s) for s in ("http", "https", "ws", "wss")}


def header_text(value: bytes) -> str:
    """A header value as aiohttp takes it: text, which it writes out as UTF-8.

    Visitors' headers are ASCII nearly always, and UTF-8 in the rest (cookie values);
    other bytes pass as Latin-1 text rather than be refused.
    """
    try:
        return value.decode()
    except UnicodeDecodeError:
        return value.decode("latin-1")


def _connection_tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(t.strip().lower() for t in value.split(b",") if t.strip())


def trace_from(traceparent: bytes | None) -> str:
    """The trace id of a well-formed W3C `traceparent`, else ""."""
    if traceparent:
        parts = traceparent.split(b"-")
        if len(parts) == 4 and len(parts[1]) == 32 and parts[1] != b"0" * 32:
            try:
                int(parts[1], 16)
                return parts[1].decode("ascii")
            except ValueError:
                pass
    return ""


def request_headers(
    scope_headers: list[tuple[bytes, bytes]],
    *,
    client_ip: str,
    scheme: str,
    skip: frozenset[bytes] = frozenset(),
) -> tuple[list[tuple[str, str]], dict[bytes, bytes]]:
    """(headers for the origin, as aiohttp takes them; the headers the edge reads).

    Host is kept: the origin sees the host the visitor asked for (Django checks it
    against ALLOWED_HOSTS, and the CSRF Origin check compares it with Origin).
    `skip` names more headers to drop: the websocket handshake's, and the visitor's
    trace context when the edge traces (its client span's is sent instead).
    """
    out: list[tuple[str, str]] = []
    seen: dict[bytes, bytes] = {}
    forwarded_for = ""
    dropped: frozenset[bytes] = HOP_BY_HOP
    for name, value in scope_headers:
        if name in _READ:
            seen[name] = value
            if name == b"connection" and value.lower() not in _PLAIN_CONNECTION:
                dropped = dropped | _connection_tokens(value)
    for name, value in scope_headers:
        if name in dropped or name in skip or name in _REPLACED:
            continue
        if name == b"x-forwarded-for":
            forwarded_for = header_text(value)
            continue
        out.append((name.decode("latin-1"), header_text(value)))
    out.append(
        (
            "x-forwarded-for",
            f"{forwarded_for}, {client_ip}" if forwarded_for else client_ip,
        )
    )
    out.append(_PROTO.get(scheme) or ("x-forwarded-proto", scheme))
    host = seen.get(b"host")
    if host is not None:
        out.append(("x-forwarded-host", header_text(host)))
    return out, seen


# The edge's server writes its own Date and Server (as nginx does).
_RESPONSE_REPLACED = HOP_BY_HOP | {b"date", b"server"}
# ... and its Cache-Control too, when the behaviour says one.
_RESPONSE_REPLACED_CACHE = _RESPONSE_REPLACED | {b"cache-control"}


def response_headers(
    raw: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]],
    extra: list[tuple[bytes, bytes]],
    *,
    replace_cache_control: bool = False,
) -> list[tuple[bytes, bytes]]:
    """The origin's headers minus hop-by-hop ones (and its Cache-Control when the
    edge sets the behaviour's), then the edge's own."""
    out: list[tuple[bytes, bytes]] = []
    connection: bytes | None = None
    replaced = _RESPONSE_REPLACED_CACHE if replace_cache_control else _RESPONSE_REPLACED
    for name, value in raw:
        name = name.lower()
        if name in replaced:
            if name == b"connection":
                connection = value
            continue
        out.append((name, value))
    if connection is not None and connection.lower() not in _PLAIN_CONNECTION:
        named = _connection_tokens(connection)
        out = [(n, v) for n, v in out if n not in named]
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
