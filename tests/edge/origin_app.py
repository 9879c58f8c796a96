"""A small real origin for the edge's tests, run as its own uvicorn process.

    python -m tests.edge.origin_app --name orders --port 9101 [--reset-port 9102]
        [--stale-port 9103] [--keep-alive SECONDS]

Every path echoes the request as JSON (with `X-Origin: <name>` and the caller's
TCP port, so tests can tell connections apart), except:

    /__origin/stream?bytes=N    N bytes, chunked, no Content-Length
    /__origin/slow?ms=N         answers after N ms (counted in /__origin/inflight)
    /__origin/cookies           three Set-Cookie headers
    /__origin/redirect          302 to /__origin/landed, with a cookie
    /__origin/hop               hop-by-hop headers the edge must not pass on
    /__origin/gzip              a gzip-encoded body
    /__origin/inflight          how many slow requests are being answered now
    /__origin/ws-closes         the close codes websocket visitors sent
    websocket, any path         echo; the text "close:CODE:REASON" closes with CODE

`--reset-port` also listens on a raw TCP port that reads a request and resets the
connection (RST), for the edge's 502. `--stale-port` listens on one that answers the
first request of each connection and keeps it open, then closes it when the next
request comes, unanswered: a server whose keep-alive ran out just as a request was
sent. `GET /__stale/log` there lists the requests it saw and what it did with them.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import socket
import struct
from typing import Any
from urllib.parse import parse_qs

import uvicorn

NAME = "origin"
STATE: dict[str, Any] = {"inflight": 0, "ws_closes": [], "stale_log": []}


def _query(scope: dict[str, Any]) -> dict[str, str]:
    parsed = parse_qs(scope.get("query_string", b"").decode())
    return {k: v[-1] for k, v in parsed.items()}


async def _respond(
    send: Any,
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"x-origin", NAME.encode()),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    # Special endpoints answer under any prefix (/api/__origin/slow too), so every
    # behaviour of a route table can reach them.
    path: str = scope["path"]
    special = path.find("/__origin/")
    if special > 0:
        path = path[special:]
    query = _query(scope)
    if path == "/__origin/stream":
        total = int(query.get("bytes", "1048576"))
        block = bytes(range(256)) * 256  # 64 KiB
        await send(
            {"type": "http.response.start", "status": 200,
             "headers": [(b"x-origin", NAME.encode()),
                         (b"content-type", b"application/octet-stream")]}
        )  # fmt: skip
        sent = 0
        while sent < total:
            chunk = block[: min(len(block), total - sent)]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/__origin/slow":
        STATE["inflight"] += 1
        try:
            await asyncio.sleep(int(query.get("ms", "1000")) / 1000)
        finally:
            STATE["inflight"] -= 1
        await _respond(send, 200, b"slow answer\n")
        return
    if path == "/__origin/inflight":
        await _respond(send, 200, str(STATE["inflight"]).encode())
        return
    if path == "/__origin/cookies":
        cookies = [
            (b"set-cookie", b"first=1; Path=/"),
            (b"set-cookie", b"second=2; Path=/; HttpOnly"),
            (b"set-cookie", b"third=3; Path=/shop; SameSite=Lax"),
        ]
        await _respond(send, 200, b"three cookies\n", cookies)
        return
    if path == "/__origin/redirect":
        headers = [
            (b"location", b"/__origin/landed"),
            (b"set-cookie", b"seen=yes; Path=/"),
        ]
        await _respond(send, 302, b"", headers)
        return
    if path == "/__origin/hop":
        headers = [
            (b"connection", b"x-private-hop"),
            (b"x-private-hop", b"secret"),
            (b"keep-alive", b"timeout=99"),
            (b"proxy-authenticate", b"Basic"),
            (b"x-end-to-end", b"kept"),
        ]
        await _respond(send, 200, b"hop\n", headers)
        return
    if path == "/__origin/gzip":
        body = gzip.compress(b"compressed " * 100)
        await _respond(send, 200, body, [(b"content-encoding", b"gzip")])
        return
    if path == "/__origin/ws-closes":
        await _respond(send, 200, json.dumps(STATE["ws_closes"]).encode())
        return
    digest = hashlib.sha256()
    size = 0
    more = True
    while more:
        message = await receive()
        chunk = message.get("body", b"")
        digest.update(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    doc = {
        "origin": NAME,
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": (scope.get("raw_path") or b"").decode("latin-1"),
        "query": scope.get("query_string", b"").decode("latin-1"),
        "headers": [
            [k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]
        ],
        "body_bytes": size,
        "body_sha256": digest.hexdigest(),
        # The caller's TCP port: which connection a request came on.
        "client_port": (scope.get("client") or ("", 0))[1],
    }
    await _respond(
        send, 200, json.dumps(doc).encode(), [(b"content-type", b"application/json")]
    )


async def websocket(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()  # websocket.connect
    offered = scope.get("subprotocols") or []
    await send(
        {"type": "websocket.accept", "subprotocol": offered[0] if offered else None}
    )
    await send({"type": "websocket.send", "text": f"hello from {NAME} {scope['path']}"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            STATE["ws_closes"].append(message.get("code"))
            return
        text = message.get("text")
        if text is not None and text.startswith("close:"):
            _, code, reason = text.split(":", 2)
            await send({"type": "websocket.close", "code": int(code), "reason": reason})
            return
        if text is not None:
            await send({"type": "websocket.send", "text": text})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    sock = writer.get_extra_info("socket")
    # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _stale(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    answered = False
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            line = head.split(b"\r\n", 1)[0].decode("latin-1").rsplit(" ", 1)[0]
            if line == "GET /__stale/log":
                body = json.dumps(STATE["stale_log"]).encode()
            elif answered:
                STATE["stale_log"].append(f"{line} dropped")
                return
            else:
                STATE["stale_log"].append(f"{line} answered")
                body = json.dumps({"origin": "stale", "request": line}).encode()
            for header in head.split(b"\r\n"):
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    await reader.readexactly(int(value))
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (len(body), body)
            )
            await writer.drain()
            answered = True
    except (asyncio.IncompleteReadError, ConnectionError):
        return
    finally:
        writer.close()


async def main(args: argparse.Namespace) -> None:
    servers = []
    if args.reset_port:
        servers.append(await asyncio.start_server(_reset, "127.0.0.1", args.reset_port))
    if args.stale_port:
        servers.append(await asyncio.start_server(_stale, "127.0.0.1", args.stale_port))
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, lifespan="off", log_level="warning",
        proxy_headers=False,  # the peer is the edge: tests tell its connections apart
        timeout_keep_alive=args.keep_alive,
    )  # fmt: skip
    await uvicorn.Server(config).serve()
    for server in servers:
        server.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--reset-port", type=int, default=0)
    parser.add_argument("--stale-port", type=int, default=0)
    parser.add_argument("--keep-alive", type=float, default=30.0, help="seconds idle")
    arguments = parser.parse_args()
    NAME = arguments.name
    asyncio.run(main(arguments))
