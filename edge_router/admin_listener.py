"""The admin listener: /_edge/* on 127.0.0.1:EDGE_ADMIN_PORT (8010), off the public
port, served by uvicorn's own HTTP protocol inside the edge's workers.

uvicorn's master binds the public port and shares it with its workers; it knows
nothing of a second port. So each worker tries to bind the admin port itself; one
gets it and serves it, the others try again every `RETRY_SECONDS`, so that when the
holder exits another worker takes the port over within a second. (Not SO_REUSEPORT:
two stacks on one machine would then share each other's admin port without a word.)
Every endpoint answers for the whole edge (the mode is in Redis, the metrics are
summed over workers), so which worker serves it does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from edge_router import admin
from edge_router.asgi_types import Receive, Scope, Send
from edge_router.errors import send_error
from edge_router.headers import request_headers

logger = logging.getLogger("edge_router.admin")
RETRY_SECONDS = 1.0
ADMIN_HEADERS = [(b"x-edge-route", b"edge"), (b"x-edge-origin", b"edge")]


class AdminApp:
    """The ASGI app of the admin listener: /_edge/* and nothing else."""

    def __init__(self, edge: admin.Edge) -> None:
        self.edge = edge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope["client"][0] if scope.get("client") else "-"
        if scope["type"] == "websocket":
            # The control room's feed (edge_router/control_room/); nothing else.
            await admin.websocket(
                self.edge, scope["path"], scope, receive, send, client=client
            )
            return
        if scope["type"] != "http":
            return
        _, seen = request_headers(
            scope["headers"], client_ip="127.0.0.1", scheme="http", skip=frozenset()
        )
        path: str = scope["path"]
        if not path.startswith(admin.PREFIX):
            await send_error(send, 404, ADMIN_HEADERS)
            return
        request = admin.AdminRequest(
            self.edge, scope["method"], seen, receive, send, ADMIN_HEADERS, client
        )
        await admin.handle(request, path)


def _bind(host: str, port: int) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        return None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class AdminListener:
    """Holds the admin port in this worker, or waits for it to come free."""

    def __init__(
        self, edge: admin.Edge, host: str, port: int, app: AdminApp | None = None
    ) -> None:
        self.host, self.port = host, port
        self.config = Config(
            app or AdminApp(edge),
            http="httptools",
            # The control room's feed is a websocket (edge_router/control_room/).
            ws="websockets",
            lifespan="off",
            access_log=False,
            log_config=None,
            proxy_headers=False,
            server_header=False,
        )
        self.config.load()
        self.state = ServerState()
        self.server: asyncio.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def serving(self) -> bool:
        return self.server is not None

    def _protocol(self) -> HttpToolsProtocol:
        return HttpToolsProtocol(
            config=self.config, server_state=self.state, app_state={}
        )

    async def _hold(self) -> None:
        loop = asyncio.get_running_loop()
        while self.server is None:
            sock = _bind(self.host, self.port)
            if sock is not None:
                self.server = await loop.create_server(self._protocol, sock=sock)
                logger.info("admin listener on http://%s:%s", self.host, self.port)
                return
            await asyncio.sleep(RETRY_SECONDS)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._hold(), name="edge-admin-listener")
        # Give this worker a moment to take the port at once, if it is free.
        await asyncio.wait({self._task}, timeout=0.05)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.server is not None:
            self.server.close()
            for connection in list(self.state.connections):
                connection.shutdown()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.wait_closed(), 2.0)
