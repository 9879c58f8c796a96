"""Proxying a websocket: handshake with the origin first, then frames both ways.

Close codes pass through in both directions: the origin's code reaches the visitor,
and the visitor's code reaches the origin.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from edge_router.asgi_types import Receive, Scope, Send
from edge_router.errors import NO_STORE, REASONS, TEXT
from edge_router.proxy import Route

# Codes a close frame may not carry (RFC 6455 7.4.1): sent on as a normal close.
_RESERVED = {1004, 1005, 1006, 1015}
MAX_MESSAGE = 4 * 1024 * 1024


def _sendable(code: int | None) -> int:
    if code is None or code in _RESERVED or not (1000 <= code <= 4999):
        return 1000
    return code


async def refuse_websocket(
    scope: Scope, send: Send, status: int, extra: list[tuple[bytes, bytes]]
) -> int:
    """Refuse the handshake with the edge's own HTTP answer when the server can send
    one (uvicorn can), else with a close (1011, or 1013 "try again later" for 429)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [TEXT, NO_STORE, *extra],
            }
        )
        body = REASONS.get(status, b"Error") + b"\n"
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1013 if status == 429 else 1011})
    return status


async def forward_websocket(
    session: aiohttp.ClientSession,
    route: Route,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    url: URL,
    headers: list[tuple[str, str]],
    extra: list[tuple[bytes, bytes]],
    idle_timeout: float,
) -> int:
    """Returns the status for the log: 101 once open, else the refusal's. Closed
    both ways (1001) after `idle_timeout` seconds without a message either way."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return 400
    try:
        upstream = await asyncio.wait_for(
            session.ws_connect(
                url,
                headers=headers,
                protocols=tuple(scope.get("subprotocols") or ()),
                max_msg_size=MAX_MESSAGE,
                autoping=True,
            ),
            route.behaviour.timeout,
        )
    except aiohttp.WSServerHandshakeError as error:
        # The origin refused the upgrade: the visitor is refused too (403 by uvicorn).
        await send({"type": "websocket.close", "code": 1008})
        return error.status
    except TimeoutError:
        return await refuse_websocket(scope, send, 504, extra)
    except (aiohttp.ClientError, OSError):
        return await refuse_websocket(scope, send, 502, extra)
    await send(
        {"type": "websocket.accept", "subprotocol": upstream.protocol, "headers": extra}
    )
    activity = Activity(asyncio.get_running_loop().time())
    to_origin = asyncio.create_task(_visitor_to_origin(receive, upstream, activity))
    to_visitor = asyncio.create_task(_origin_to_visitor(upstream, send, activity))
    try:
        pumps = {to_origin, to_visitor}
        if not await _until_done_or_idle(pumps, activity, idle_timeout):
            await send({"type": "websocket.close", "code": 1001, "reason": "idle"})
    finally:
        for task in (to_origin, to_visitor):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await upstream.close()
    return 101


@dataclass
class Activity:
    """When a message last went either way (the loop's clock)."""

    last: float


async def _until_done_or_idle(
    tasks: set[asyncio.Task[None]], activity: Activity, idle_timeout: float
) -> bool:
    """True when a side finished; False when both were quiet for `idle_timeout`."""
    loop = asyncio.get_running_loop()
    while True:
        wait = activity.last + idle_timeout - loop.time()
        if wait <= 0:
            return False
        done, _ = await asyncio.wait(
            tasks, timeout=wait, return_when=asyncio.FIRST_COMPLETED
        )
        if done:
            return True


async def _visitor_to_origin(
    receive: Receive, upstream: aiohttp.ClientWebSocketResponse, activity: Activity
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        message = await receive()
        activity.last = loop.time()
        kind = message["type"]
        if kind == "websocket.receive":
            if message.get("text") is not None:
                await upstream.send_str(message["text"])
            else:
                await upstream.send_bytes(message.get("bytes") or b"")
        elif kind == "websocket.disconnect":
            reason: Any = message.get("reason") or ""
            await upstream.close(
                code=_sendable(message.get("code")), message=str(reason).encode()
            )
            return


async def _origin_to_visitor(
    upstream: aiohttp.ClientWebSocketResponse, send: Send, activity: Activity
) -> None:
    loop = asyncio.get_running_loop()
    reason = ""
    while True:
        frame = await upstream.receive()
        activity.last = loop.time()
        if frame.type == aiohttp.WSMsgType.TEXT:
            await send({"type": "websocket.send", "text": frame.data})
        elif frame.type == aiohttp.WSMsgType.BINARY:
            await send({"type": "websocket.send", "bytes": frame.data})
        else:
            if frame.type == aiohttp.WSMsgType.CLOSE:
                reason = frame.extra or ""
            break
    code = upstream.close_code
    # An origin that vanished without a close frame: tell the visitor it was abnormal.
    await send(
        {
            "type": "websocket.close",
            "code": 1011 if code in (None, 1006) else _sendable(code),
            "reason": reason,
        }
    )
