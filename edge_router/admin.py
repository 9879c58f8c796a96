"""The edge's own endpoints under /_edge/.

GET  /_edge/healthz   mode and Redis state of this worker (open)
GET  /_edge/metrics   Prometheus text, all workers (open)
GET  /_edge/routes    the route table and the mode in force (Bearer token)
GET  /_edge/mode      the mode in force (Bearer token)
POST /_edge/mode      {"mode": "canary", "percent": 10} (Bearer token)
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any, Protocol

import redis
import redis.asyncio as aioredis

from edge_router import metrics
from edge_router.asgi_types import Receive, Send
from edge_router.config import EdgeConfig
from edge_router.errors import NO_STORE, send_body, send_json
from edge_router.modes import ModeError, ModeFollower, mode_validate, mode_write_async
from edge_router.routes import RouteTable


class Edge(Protocol):
    """What answers the admin API: a Python edge worker, or the nginx engine's
    control plane."""

    engine: str
    config: EdgeConfig
    table: RouteTable
    follower: ModeFollower
    redis: aioredis.Redis


PREFIX = "/_edge/"
MAX_ADMIN_BODY = 4096
ENDPOINTS: dict[str, frozenset[str]] = {
    "/_edge/healthz": frozenset({"GET", "HEAD"}),
    "/_edge/metrics": frozenset({"GET", "HEAD"}),
    "/_edge/routes": frozenset({"GET", "HEAD"}),
    "/_edge/mode": frozenset({"GET", "HEAD", "POST"}),
}
PROTECTED = frozenset({"/_edge/routes", "/_edge/mode"})


def _problem(message: str) -> dict[str, str]:
    return {"error": message}


def authorised(header: bytes | None, token: str) -> bool:
    if not header or header[:7].lower() != b"bearer ":
        return False
    return hmac.compare_digest(header[7:].strip(), token.encode())


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def handle(
    edge: Edge,
    path: str,
    method: str,
    seen: dict[bytes, bytes],
    receive: Receive,
    send: Send,
    extra: list[tuple[bytes, bytes]],
) -> tuple[int, int]:
    """(status, bytes sent) for a request under /_edge/."""
    endpoint = path.rstrip("/") if path != PREFIX else path
    allowed = ENDPOINTS.get(endpoint)
    if allowed is None:
        known = ", ".join(sorted(ENDPOINTS))
        return 404, await send_json(
            send, 404, _problem(f"no such endpoint; try {known}"), extra
        )
    if method not in allowed:
        allow = (b"allow", ", ".join(sorted(allowed)).encode())
        doc: dict[str, Any] = _problem(
            f"{method} is not allowed here; use {', '.join(sorted(allowed))}"
        )
        return 405, await send_json(send, 405, doc, [allow, *extra])
    if endpoint in PROTECTED and not authorised(
        seen.get(b"authorization"), edge.config.admin_token
    ):
        challenge = (b"www-authenticate", b'Bearer realm="edge"')
        doc = _problem("a valid admin token is required: Authorization: Bearer <token>")
        return 401, await send_json(send, 401, doc, [challenge, *extra])
    if endpoint == "/_edge/healthz":
        return 200, await send_json(send, 200, _health(edge), extra)
    if endpoint == "/_edge/metrics":
        body, content_type = metrics.render()
        headers = [(b"content-type", content_type.encode()), NO_STORE, *extra]
        return 200, await send_body(send, 200, body, headers)
    if endpoint == "/_edge/routes":
        doc = {"mode": edge.follower.current.as_dict(), **edge.table.as_dict()}
        return 200, await send_json(send, 200, doc, extra)
    if method != "POST":
        return 200, await send_json(send, 200, edge.follower.current.as_dict(), extra)
    return await _set_mode(edge, seen, receive, send, extra)


def _health(edge: Edge) -> dict[str, Any]:
    mode = edge.follower.current
    return {
        "status": "ok",
        "engine": edge.engine,
        "mode": mode.mode,
        "percent": mode.percent,
        "version": mode.version,
        "redis": "ok" if edge.follower.redis_ok else "unreachable",
        "worker": os.getpid(),
    }


async def _set_mode(
    edge: Edge,
    seen: dict[bytes, bytes],
    receive: Receive,
    send: Send,
    extra: list[tuple[bytes, bytes]],
) -> tuple[int, int]:
    content_type = seen.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        doc = _problem("send the mode as JSON (Content-Type: application/json)")
        return 415, await send_json(send, 415, doc, extra)
    raw = await _read_limited(receive, MAX_ADMIN_BODY)
    if raw is None:
        doc = _problem(f"the body must be at most {MAX_ADMIN_BODY} bytes")
        return 413, await send_json(send, 413, doc, extra)
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        return 400, await send_json(
            send, 400, _problem(f"malformed JSON: {error}"), extra
        )
    if not isinstance(doc, dict):
        doc = _problem('expected an object like {"mode": "canary", "percent": 10}')
        return 422, await send_json(send, 422, doc, extra)
    unknown = sorted(set(doc) - {"mode", "percent"})
    if unknown:
        return 422, await send_json(
            send, 422, _problem(f"unknown fields: {unknown}"), extra
        )
    try:
        mode = mode_validate(doc.get("mode"), doc.get("percent"))
    except ModeError as error:
        return 422, await send_json(send, 422, _problem(str(error)), extra)
    try:
        stored = await mode_write_async(edge.redis, edge.config.mode_key, mode)
    except (redis.RedisError, OSError) as error:
        doc = _problem(
            f"the mode store (Redis) is unreachable: {error.__class__.__name__}"
        )
        return 503, await send_json(send, 503, doc, extra)
    await edge.follower.refresh()
    return 200, await send_json(send, 200, stored.as_dict(), extra)
