"""Proxying a websocket: handshake with the origin first, then frames both ways.

Close codes pass through in both directions: the origin's code reaches the visitor,
and the visitor's code reaches the origin.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from yarl import URL

from edge_router.asgi_types import Receive, Scope, Send
from edge_router.proxy import Route

# Codes a close frame may not carry (RFC 6455 7.4.1): sent on as a normal close.
_RESERVED = {1004, 1005, 1006, 1015}
MAX_MESSAGE = 4 * 1024 * 1024


def _sendable(code: int | None) -> int:
    if code is None or code in _RESERVED or not (1000 <= code <= 4999):
        return 1000
    return code


async def _deny(
    scope: Scope, send: Send, status: int, extra: list[tuple[bytes, bytes]]
) -> None:
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = b"Bad gateway\n" if status == 502 else b"Gateway timeout\n"
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), *extra],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1011})


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
) -> int:
    """Returns the status for the log: 101 once open, else the refusal's."""
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
        await _deny(scope, send, 504, extra)
        return 504
    except (aiohttp.ClientError, OSError):
        await _deny(scope, send, 502, extra)
        return 502
    await send(
        {"type": "websocket.accept", "subprotocol": upstream.protocol, "headers": extra}
    )
    to_origin = asyncio.create_task(_visitor_to_origin(receive, upstream))
    to_visitor = asyncio.create_task(_origin_to_visitor(upstream, send))
    try:
        await asyncio.wait({to_origin, to_visitor}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_origin, to_visitor):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await upstream.close()
    return 101


async def _visitor_to_origin(
    receive: Receive, upstream: aiohttp.ClientWebSocketResponse
) -> None:
    while True:
        message = await receive()
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
    upstream: aiohttp.ClientWebSocketResponse, send: Send
) -> None:
    reason = ""
    while True:
        frame = await upstream.receive()
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
