"""The edge's own endpoints under /_edge/, served on the admin listener
(127.0.0.1:EDGE_ADMIN_PORT, edge_router/admin_listener.py), as Envoy and nginx keep
theirs off the public port. The public port answers only the health check; every
other /_edge/ path there is a 404.

GET  /_edge/healthz   mode and Redis state of this worker (open; public port too)
GET  /_edge/metrics   Prometheus text, all workers (open)
GET  /_edge/routes    the route table and the mode in force (Bearer token)
GET  /_edge/mode      the mode in force (Bearer token)
POST /_edge/mode      {"mode": "canary", "percent": 10} (Bearer token)
     /_edge/control/  the control room: a page, its actions and its websocket feed
                      (edge_router/control_room/; the token, or its login cookie)

An endpoint is one entry of `ENDPOINTS` (methods, whether it takes the token, its
handler): `endpoint_add` mounts another (a control-room page, say).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

import redis
import redis.asyncio as aioredis

from edge_router import control_room, metrics
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.config import EdgeConfig
from edge_router.errors import NO_STORE, send_body, send_json
from edge_router.limits import BodyTooLarge
from edge_router.modes import ModeError, ModeFollower, mode_validate, mode_write_async
from edge_router.proxy import BodyDeadlines, BodyTooSlow, ClientGone, read_body
from edge_router.routes import RouteTable

if TYPE_CHECKING:
    from edge_router import app

PREFIX = "/_edge/"
HEALTH = "/_edge/healthz"
MAX_ADMIN_BODY = 4096
ADMIN_BODY_DEADLINES = BodyDeadlines(total=5.0, idle=5.0)


class Edge(Protocol):
    """What answers the admin API: a Python edge worker (edge_router/app.py), or the
    nginx engine's control plane (edge_router/engine.py)."""

    engine: str
    config: EdgeConfig
    table: RouteTable
    follower: ModeFollower
    redis: aioredis.Redis


@dataclass(frozen=True)
class AdminRequest:
    edge: Edge
    method: str
    seen: dict[bytes, bytes]
    receive: Receive
    send: Send
    extra: list[tuple[bytes, bytes]]
    # The caller's address, for the control room's log of who did what.
    client: str = "-"


# (status, bytes sent)
Handler = Callable[[AdminRequest], Awaitable[tuple[int, int]]]


@dataclass(frozen=True)
class Endpoint:
    methods: frozenset[str]
    protected: bool
    handler: Handler


ENDPOINTS: dict[str, Endpoint] = {}


def endpoint_add(
    path: str, methods: set[str], handler: Handler, *, protected: bool
) -> None:
    """Mount `handler` at `path` (under /_edge/) on the admin listener."""
    if not path.startswith(PREFIX) or path.endswith("/"):
        raise ValueError(f"an admin endpoint is /_edge/<name>, not {path!r}")
    ENDPOINTS[path] = Endpoint(frozenset(methods), protected, handler)


def _problem(message: str) -> dict[str, str]:
    return {"error": message}


def authorised(header: bytes | None, token: str) -> bool:
    if not header or header[:7].lower() != b"bearer ":
        return False
    return hmac.compare_digest(header[7:].strip(), token.encode())


def endpoint_path(path: str) -> str:
    return path.rstrip("/") if path != PREFIX else path


async def handle(request: AdminRequest, path: str) -> tuple[int, int]:
    """(status, bytes sent) for a request under /_edge/ on the admin listener."""
    send, extra, method = request.send, request.extra, request.method
    if path.startswith(control_room.PREFIX):
        python_edge = _control_room_edge(request.edge)
        if python_edge is None:
            refusal = _problem(
                "the control room runs with the Python engine (EDGE_ENGINE=python)"
            )
            return 404, await send_json(send, 404, refusal, extra)
        return await control_room.handle(
            control_room.Request(
                python_edge, path, method, request.seen, request.receive, send,
                request.client,
            ),
            extra,
        )  # fmt: skip
    endpoint_name = endpoint_path(path)
    endpoint = ENDPOINTS.get(endpoint_name)
    if endpoint is None:
        known = ", ".join(sorted(ENDPOINTS))
        return 404, await send_json(
            send, 404, _problem(f"no such endpoint; try {known}"), extra
        )
    if method not in endpoint.methods:
        allowed = sorted(endpoint.methods)
        allow = (b"allow", ", ".join(allowed).encode())
        doc: dict[str, Any] = _problem(
            f"{method} is not allowed here; use {', '.join(allowed)}"
        )
        return 405, await send_json(send, 405, doc, [allow, *extra])
    if endpoint.protected and not authorised(
        request.seen.get(b"authorization"), request.edge.config.admin_token
    ):
        challenge = (b"www-authenticate", b'Bearer realm="edge"')
        doc = _problem("a valid admin token is required: Authorization: Bearer <token>")
        return 401, await send_json(send, 401, doc, [challenge, *extra])
    return await endpoint.handler(request)


async def health(request: AdminRequest) -> tuple[int, int]:
    return 200, await send_json(request.send, 200, _health(request.edge), request.extra)


async def _metrics(request: AdminRequest) -> tuple[int, int]:
    body, content_type = metrics.render()
    headers = [(b"content-type", content_type.encode()), NO_STORE, *request.extra]
    return 200, await send_body(request.send, 200, body, headers)


async def _routes(request: AdminRequest) -> tuple[int, int]:
    edge = request.edge
    doc = {"mode": edge.follower.current.as_dict(), **edge.table.as_dict()}
    return 200, await send_json(request.send, 200, doc, request.extra)


async def _mode(request: AdminRequest) -> tuple[int, int]:
    if request.method != "POST":
        doc = request.edge.follower.current.as_dict()
        return 200, await send_json(request.send, 200, doc, request.extra)
    return await _set_mode(request)


async def websocket(
    edge: Edge, path: str, scope: Scope, receive: Receive, send: Send, *, client: str
) -> None:
    """A websocket under /_edge/: the control room's feed, or refused."""
    python_edge = _control_room_edge(edge)
    if path.startswith(control_room.PREFIX) and python_edge is not None:
        await control_room.websocket(
            python_edge, path, scope, receive, send, client=client
        )
    else:
        await send({"type": "websocket.close", "code": 1008})


def _control_room_edge(edge: Edge) -> app.Edge | None:
    """The Python edge worker that hosts the control room; None under the nginx
    engine, whose control plane has no page feed to show (docs: control-room.md)."""
    if getattr(edge, "control", None) is None:
        return None
    return cast("app.Edge", edge)


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


async def _set_mode(request: AdminRequest) -> tuple[int, int]:
    edge, seen, send, extra = request.edge, request.seen, request.send, request.extra
    content_type = seen.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        doc = _problem("send the mode as JSON (Content-Type: application/json)")
        return 415, await send_json(send, 415, doc, extra)
    try:
        raw = await read_body(request.receive, MAX_ADMIN_BODY, ADMIN_BODY_DEADLINES)
    except BodyTooLarge:
        doc = _problem(f"the body must be at most {MAX_ADMIN_BODY} bytes")
        return 413, await send_json(send, 413, doc, extra)
    except (BodyTooSlow, ClientGone):
        doc = _problem("the body did not arrive in time")
        return 408, await send_json(send, 408, doc, [*extra, (b"connection", b"close")])
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


endpoint_add(HEALTH, {"GET", "HEAD"}, health, protected=False)
endpoint_add("/_edge/metrics", {"GET", "HEAD"}, _metrics, protected=False)
endpoint_add("/_edge/routes", {"GET", "HEAD"}, _routes, protected=True)
endpoint_add("/_edge/mode", {"GET", "HEAD", "POST"}, _mode, protected=True)
