"""The control room: one page on the admin side of the edge, for the big screen.

The edge's mode, the sale, the faults and live charts (the watched page's p50 and
p99, Muskie orders accepted and fulfilled a second, the queue's depth, the
warehouse's orders in flight by source against its capacity), pushed over a
websocket once a second. Plain ASGI, no Django, mounted by edge_router/admin.py
under /_edge/control/. Every button is a command a terminal could type, and every
action is logged. Docs: docs/guides/control-room.md.
"""

from edge_router.control_room.http import PREFIX, Request, handle, websocket
from edge_router.control_room.room import ControlRoom
from edge_router.control_room.settings import watched_path

__all__ = ["PREFIX", "ControlRoom", "Request", "handle", "watched_path", "websocket"]
