"""The control room's HTTP side under /_edge/control/ and its websocket feed.

GET  /_edge/control/              the page (a login form, 401, without a session)
POST /_edge/control/login         form: name, token -> the session cookie, 303
POST /_edge/control/logout        the cookie cleared, 303
GET  /_edge/control/static/NAME   the page's script, style and uPlot (open)
GET  /_edge/control/state         the catalogue, commands and the latest tick
POST /_edge/control/mode          {"mode": "canary", "percent": 10}
POST /_edge/control/faults/set    {"name": "warehouse.down", "value": 1, "ttl": 120}
POST /_edge/control/faults/clear  {"name": "warehouse.down"} or {} for every one
POST /_edge/control/faults/kill   {"process": "fulfillment-worker"}
POST /_edge/control/sale/start    {"mode": "strangler", "units": 300, ...}
POST /_edge/control/sale/stop     {}
GET  /_edge/control/slowest       the last sale's slowest Tourney requests (slowest.py)
GET  /_edge/control/traces/REPORT/TRACE_ID   the trace view of one of them
WS   /_edge/control/feed          one tick a second (feed.py)

Everything but the login form and the static files takes the admin token (Bearer)
or the session cookie: none is 401, a wrong one 403. Actions take JSON, so another
site's page cannot post them without a CORS preflight the edge never grants.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_router.asgi_types import Receive, Scope, Send
from edge_router.control_room import access, actions, faults, sale, slowest
from edge_router.errors import NO_STORE, send_body, send_json

if TYPE_CHECKING:
    from edge_router.app import Edge

PREFIX = "/_edge/control/"
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {
    "control.js": b"text/javascript; charset=utf-8",
    "control.css": b"text/css; charset=utf-8",
    "uPlot.iife.min.js": b"text/javascript; charset=utf-8",
    "uPlot.min.css": b"text/css; charset=utf-8",
}
MAX_BODY = 4096
HTML = (b"content-type", b"text/html; charset=utf-8")
PAGE_HEADERS = [
    HTML,
    NO_STORE,
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        b"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
# A trace view (observability/report.py) is one static page with its style inline.
VIEW_HEADERS = [
    HTML,
    NO_STORE,
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]
ACTIONS = frozenset(
    {"mode", "faults/set", "faults/clear", "faults/kill", "sale/start", "sale/stop"}
)


@dataclass(frozen=True)
class Request:
    edge: Edge
    path: str
    method: str
    seen: dict[bytes, bytes]
    receive: Receive
    send: Send
    client: str


def _asset(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def login_page(message: str = "") -> bytes:
    text = _asset("login.html").decode()
    return text.replace("{{message}}", html.escape(message)).encode()


async def handle(request: Request, extra: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    """(status, bytes sent) for a request under /_edge/control/."""
    name = request.path[len(PREFIX) :].strip("/")
    send, method = request.send, request.method
    if name.startswith("static/"):
        return await _static(request, name.removeprefix("static/"), extra)
    reads = {"GET", "HEAD"}
    allowed = {"": reads, "state": reads, "slowest": reads, "login": {"POST"}}
    methods = allowed.get(name, {"POST"} if name in ACTIONS | {"logout"} else None)
    if name.startswith("traces/"):
        methods = reads
    if methods is None:
        doc = {"error": f"no such page; the control room is {PREFIX}"}
        return 404, await send_json(send, 404, doc, extra)
    if method not in methods:
        allow = (b"allow", ", ".join(sorted(methods)).encode())
        doc = {"error": f"{method} is not allowed here; use {', '.join(methods)}"}
        return 405, await send_json(send, 405, doc, [allow, *extra])
    if name == "login":
        return await _login(request, extra)
    if name == "logout":
        headers = [access.cookie_clear(), (b"location", PREFIX.encode()), *extra]
        return 303, await send_body(send, 303, b"", [NO_STORE, *headers])
    who, refusal = access.identify(
        token=request.edge.config.admin_token,
        authorization=request.seen.get(b"authorization"),
        cookie_header=request.seen.get(b"cookie"),
    )
    if who is None:
        return await _refuse(request, refusal, page=name == "", extra=extra)
    if name == "":
        return 200, await send_body(send, 200, _asset("page.html"), PAGE_HEADERS)
    if name == "state":
        return 200, await send_json(send, 200, _state(request.edge, who), extra)
    if name == "slowest":
        room = request.edge.control
        doc = slowest.slowest_list(room.settings, await room.sale.status())
        return 200, await send_json(send, 200, doc, extra)
    if name.startswith("traces/"):
        return await _trace_view(request, name.removeprefix("traces/"), extra)
    return await _act(request, name, who, extra)


async def _refuse(
    request: Request, status: int, *, page: bool, extra: list[tuple[bytes, bytes]]
) -> tuple[int, int]:
    challenge = (b"www-authenticate", b'Bearer realm="edge control room"')
    if page:
        message = "" if status == 401 else "Your session ended: sign in again."
        headers = [*PAGE_HEADERS, challenge, access.cookie_clear()]
        return status, await send_body(
            request.send, status, login_page(message), headers
        )
    doc = {
        "error": "the admin token is required: Authorization: Bearer <token>, "
        f"or sign in at {PREFIX}"
        if status == 401
        else "that token or session is not valid (or has expired)"
    }
    return status, await send_json(request.send, status, doc, [challenge, *extra])


async def _trace_view(
    request: Request, name: str, extra: list[tuple[bytes, bytes]]
) -> tuple[int, int]:
    report, _, trace_id = name.partition("/")
    view = slowest.trace_view(request.edge.control.settings, report, trace_id)
    if view is None:
        doc = {"error": f"no trace view of {trace_id!r} in report {report!r}"}
        return 404, await send_json(request.send, 404, doc, extra)
    return 200, await send_body(request.send, 200, view.read_bytes(), VIEW_HEADERS)


async def _static(
    request: Request, name: str, extra: list[tuple[bytes, bytes]]
) -> tuple[int, int]:
    kind = ASSETS.get(name)
    if kind is None or request.method not in {"GET", "HEAD"}:
        return 404, await send_json(request.send, 404, {"error": "no such file"}, extra)
    body = _asset(f"vendor/{name}" if name.startswith("uPlot") else name)
    headers = [(b"content-type", kind), (b"cache-control", b"max-age=300"), *extra]
    if request.method == "HEAD":
        headers.append((b"content-length", str(len(body)).encode()))
        await request.send({"type": "http.response.start", "status": 200,
                            "headers": headers})  # fmt: skip
        await request.send({"type": "http.response.body", "body": b""})
        return 200, 0
    return 200, await send_body(request.send, 200, body, headers)


async def _body(receive: Receive) -> bytes | None:
    """The request's body, or None past MAX_BODY."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _content_type(seen: dict[bytes, bytes]) -> bytes:
    return seen.get(b"content-type", b"").split(b";")[0].strip().lower()


async def _login(request: Request, extra: list[tuple[bytes, bytes]]) -> tuple[int, int]:
    send = request.send
    if _content_type(request.seen) != b"application/x-www-form-urlencoded":
        doc = {"error": "send the login form (application/x-www-form-urlencoded)"}
        return 415, await send_json(send, 415, doc, extra)
    raw = await _body(request.receive)
    if raw is None:
        return 413, await send_json(send, 413, {"error": "the form is too long"}, extra)
    try:
        form = urllib.parse.parse_qs(raw.decode(), strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        form = {}
    name, token = form.get("name", [""])[0], form.get("token", [""])[0]
    room = request.edge.control
    try:
        value = access.session_make(
            token=request.edge.config.admin_token, name=name, given=token
        )
    except access.LoginRefused as error:
        room.log_action(
            who=name[:40] or "-", client=request.client, action="login",
            command="-", outcome=f"refused: {error}",
        )  # fmt: skip
        status = 400 if "name" in str(error) else 403
        page = login_page(str(error))
        return status, await send_body(send, status, page, PAGE_HEADERS)
    room.log_action(
        who=name, client=request.client, action="login", command="-", outcome="ok"
    )
    headers = [
        access.cookie_header(value),
        (b"location", PREFIX.encode()),
        NO_STORE,
        *extra,
    ]
    return 303, await send_body(send, 303, b"", headers)


async def _act(
    request: Request, name: str, who: str, extra: list[tuple[bytes, bytes]]
) -> tuple[int, int]:
    send = request.send
    if _content_type(request.seen) != b"application/json":
        doc = {"error": "send the action as JSON (Content-Type: application/json)"}
        return 415, await send_json(send, 415, doc, extra)
    raw = await _body(request.receive)
    if raw is None:
        doc = {"error": f"the body must be at most {MAX_BODY} bytes"}
        return 413, await send_json(send, 413, doc, extra)
    try:
        doc = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as error:
        doc = {"error": f"malformed JSON: {error}"}
        return 400, await send_json(send, 400, doc, extra)
    if not isinstance(doc, dict):
        return 422, await send_json(send, 422, {"error": "expected an object"}, extra)
    room, client = request.edge.control, request.client
    status, answer = await _dispatch(room, name, doc, who=who, client=client)
    return status, await send_json(send, status, answer, extra)


async def _dispatch(
    room: Any, name: str, doc: dict[str, Any], *, who: str, client: str
) -> actions.Answer:
    if name == "mode":
        return await actions.mode_set(room, doc, who=who, client=client)
    if name.startswith("faults/"):
        what = name.removeprefix("faults/")
        return await actions.faults_act(room, what, doc, who=who, client=client)
    if name == "sale/start":
        return await actions.sale_start(room, doc, who=who, client=client)
    return await actions.sale_stop(room, who=who, client=client)


def _state(edge: Edge, who: str) -> dict[str, Any]:
    feed = edge.control.feed
    return {
        "who": who,
        "mode": edge.follower.current.as_dict(),
        "watched_path": edge.watched_path,
        "catalogue": faults.catalogue(),
        "sale_options": {
            flag: [low, high] for flag, (_, low, high) in sale.OPTIONS.items()
        },
        "latest": feed.history[-1] if feed.history else None,
    }


async def websocket(
    edge: Edge, path: str, scope: Scope, receive: Receive, send: Send, *, client: str
) -> None:
    """The feed at /_edge/control/feed: the history, then a tick a second."""
    headers = dict(scope.get("headers") or [])
    who, refusal = access.identify(
        token=edge.config.admin_token,
        authorization=headers.get(b"authorization"),
        cookie_header=headers.get(b"cookie"),
    )
    origin = headers.get(b"origin")
    host = headers.get(b"host", b"").decode("latin-1")
    if origin and urllib.parse.urlsplit(origin.decode("latin-1")).netloc != host:
        who, refusal = None, 403  # another site's page: never the feed
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    if path.rstrip("/") != PREFIX + "feed" or who is None:
        status = 404 if who is not None else refusal
        if "websocket.http.response" in (scope.get("extensions") or {}):
            await send({"type": "websocket.http.response.start", "status": status,
                        "headers": [(b"content-type", b"text/plain")]})  # fmt: skip
            await send({"type": "websocket.http.response.body", "body": b"refused\n"})
        else:
            await send({"type": "websocket.close", "code": 1008})
        return
    await send({"type": "websocket.accept"})
    feed = edge.control.feed
    queue = feed.join()
    edge.control.log_action(
        who=who, client=client, action="watch", command="-", outcome="feed opened"
    )
    pusher = asyncio.create_task(_push(send, queue, list(feed.history)))
    listener = asyncio.create_task(_until_closed(receive))
    try:
        await asyncio.wait({pusher, listener}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        feed.leave(queue)
        for task in (pusher, listener):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _push(send: Send, queue: asyncio.Queue[str], history: list[Any]) -> None:
    await send({"type": "websocket.send",
                "text": json.dumps({"type": "history", "ticks": history})})  # fmt: skip
    while True:
        await send({"type": "websocket.send", "text": await queue.get()})


async def _until_closed(receive: Receive) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass
