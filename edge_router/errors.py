"""The edge's own answers: short, generic, plain text; never an origin's details."""

from __future__ import annotations

import json
from typing import Any

from edge_router.asgi_types import Send

REASONS: dict[int, bytes] = {
    400: b"Bad request",
    401: b"Unauthorized",
    404: b"Not found",
    405: b"Method not allowed",
    408: b"Request timeout",
    413: b"Request body too large",
    415: b"Unsupported media type",
    422: b"Unprocessable content",
    429: b"Too many requests",
    502: b"Bad gateway",
    503: b"Service unavailable",
    504: b"Gateway timeout",
}
TEXT = (b"content-type", b"text/plain; charset=utf-8")
JSON = (b"content-type", b"application/json")
NO_STORE = (b"cache-control", b"no-store")


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> int:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
    return len(body)


async def send_error(
    send: Send, status: int, extra: list[tuple[bytes, bytes]], *, head: bool = False
) -> int:
    body = REASONS.get(status, b"Error") + b"\n"
    headers = [TEXT, NO_STORE, *extra]
    if head:
        await send(
            {"type": "http.response.start", "status": status, "headers": headers}
        )
        await send({"type": "http.response.body", "body": b""})
        return 0
    return await send_body(send, status, body, headers)


async def send_json(
    send: Send, status: int, doc: Any, extra: list[tuple[bytes, bytes]]
) -> int:
    body = json.dumps(doc, indent=2).encode() + b"\n"
    return await send_body(send, status, body, [JSON, NO_STORE, *extra])
