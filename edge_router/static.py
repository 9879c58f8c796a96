"""A static origin answered by the edge itself: a directory's files, as S3 behind
CloudFront (the table's side is in edge_router/sites.py).

GET and HEAD only (405 with `Allow` else); `ETag` (nginx's form: mtime and size in
hex), `Last-Modified`, the origin's `Cache-Control` (or its behaviour's); `304` on a
matching `If-None-Match`, else on `If-Modified-Since` at or after the file's time;
a directory is its `index.html`, never a listing; no path leaves the root: `.` and
`..` are resolved before routing (edge_router/paths.py) and a file reached through a
symlink is a 404, wherever the link points.

Cheap on purpose, since the point of a static origin is that a page view costs next
to nothing: what a path resolves to (its file, headers and, for small files, its
bytes) is remembered per worker and checked against the disk at most once every
`RECHECK_SECONDS`, so a rebuilt site is served within that time.
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, replace
from email.utils import formatdate, parsedate_to_datetime
from urllib.parse import unquote

from edge_router.asgi_types import Send
from edge_router.errors import send_error
from edge_router.proxy import PERSONAL_CACHE, Exchange, Outcome
from edge_router.routes import Origin
from edge_router.sites import CONTENT_TYPES, DEFAULT_TYPE

logger = logging.getLogger("edge_router.static")
RECHECK_SECONDS = 1.0
# Files up to this size are kept in memory; larger ones are read per request.
MEMORY_LIMIT = 256 * 1024
CHUNK = 64 * 1024
# Paths remembered per worker (found or not); a flood of distinct ones empties it.
PATH_MEMORY = 4096
ALLOW = (b"allow", b"GET, HEAD")


@dataclass(frozen=True, slots=True)
class StaticFile:
    """A file found for a path: where it is, what it is, and its answer's headers."""

    path: str
    identity: tuple[int, int, int]  # (inode, mtime_ns, size): changed means reload
    mtime: int
    etag: bytes
    headers: list[tuple[bytes, bytes]]  # the 200's, Content-Length included
    not_modified: list[tuple[bytes, bytes]]  # the 304's
    body: bytes | None  # None: too large to keep, read per request


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(os.path.splitext(name)[1].lower(), DEFAULT_TYPE)


def etag_matches(header: bytes, etag: bytes) -> bool:
    """If-None-Match's weak comparison (RFC 9110 13.1.2): any listed tag, or `*`."""
    for tag in header.split(b","):
        tag = tag.strip()
        if tag == b"*" or tag.removeprefix(b"W/") == etag:
            return True
    return False


def unmodified_since(header: bytes, mtime: int) -> bool:
    """If-Modified-Since at or after the file's time (a bad date: modified)."""
    try:
        since = parsedate_to_datetime(header.decode("latin-1")).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return False
    return mtime <= since


class StaticSite:
    """One per static origin and worker: its files, served and remembered."""

    def __init__(
        self,
        origin: Origin,
        *,
        recheck: float = RECHECK_SECONDS,
        cache_control: str | None = None,
    ) -> None:
        """`cache_control`: a behaviour's own, which replaces the origin's."""
        assert origin.root is not None
        self.origin = origin
        self.root = str(origin.root)
        self.recheck = recheck
        cache = cache_control or origin.cache_control
        common = [(b"cache-control", cache.encode())]
        common += [(k.lower().encode(), v.encode()) for k, v in origin.headers]
        self._common = common
        self._known: dict[str, tuple[float, StaticFile | None]] = {}
        if not os.path.isdir(self.root):
            logger.warning(
                "static origin %s: %s is not a directory (yet): every path is a 404",
                origin.name,
                self.root,
            )

    def find(self, path: str) -> StaticFile | None:
        """The file a normalised request path names, remembered for `recheck` s."""
        now = time.monotonic()
        known = self._known.get(path)
        if known is not None and now - known[0] < self.recheck:
            return known[1]
        found = self._resolve(path, known[1] if known else None)
        if len(self._known) >= PATH_MEMORY:
            self._known.clear()
        self._known[path] = (now, found)
        return found

    def _resolve(self, path: str, previous: StaticFile | None) -> StaticFile | None:
        name = unquote(path, errors="replace")
        segments = name.split("/")[1:]
        if any(s in (".", "..") or "\x00" in s or "\\" in s for s in segments):
            return None
        root = os.path.realpath(self.root)
        candidate = os.path.join(root, *[s for s in segments if s])
        try:
            if name.endswith("/") or os.path.isdir(candidate):
                candidate = os.path.join(candidate, "index.html")
            # A symlink anywhere below the root (or `..`) makes these differ.
            if os.path.realpath(candidate) != candidate:
                return None
            info = os.stat(candidate)
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        identity = (info.st_ino, info.st_mtime_ns, info.st_size)
        if previous is not None and previous.identity == identity:
            return previous
        return self._load(candidate, identity, int(info.st_mtime))

    def _load(
        self, path: str, identity: tuple[int, int, int], mtime: int
    ) -> StaticFile | None:
        size = identity[2]
        body = None
        if size <= MEMORY_LIMIT:
            try:
                with open(path, "rb") as file:
                    body = file.read(MEMORY_LIMIT + 1)
            except OSError:
                return None
            size = len(body)
        etag = f'"{mtime:x}-{size:x}"'.encode()
        validators = [
            (b"etag", etag),
            (b"last-modified", formatdate(mtime, usegmt=True).encode()),
            *self._common,
        ]
        headers = [
            (b"content-type", content_type(path).encode()),
            (b"content-length", str(size).encode()),
            *validators,
        ]
        return StaticFile(path, identity, mtime, etag, headers, validators, body)

    async def serve(
        self,
        request: Exchange,
        path: str,
        extra: list[tuple[bytes, bytes]],
        *,
        personal: bool = False,
    ) -> Outcome:
        """`personal`: the edge made this answer the visitor's own (it sets a newly
        drawn visitor id), so its Cache-Control is `private, no-store`."""
        method = request.method
        if method not in ("GET", "HEAD"):
            return Outcome(await send_error(request.send, 405, [ALLOW, *extra]))
        found = self.find(path)
        if found is None:
            head = method == "HEAD"
            return Outcome(await send_error(request.send, 404, extra, head=head))
        send = request.send
        if personal:
            found = _personal(found)
        if self._not_modified(request.scope["headers"], found):
            headers = [*found.not_modified, *extra]
            start = {"type": "http.response.start", "status": 304, "headers": headers}
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return Outcome(304)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*found.headers, *extra],
            }
        )
        if method == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return Outcome(200)
        if found.body is not None:
            await send({"type": "http.response.body", "body": found.body})
            return Outcome(200, len(found.body))
        return Outcome(200, await _stream(send, found.path))

    @staticmethod
    def _not_modified(headers: list[tuple[bytes, bytes]], found: StaticFile) -> bool:
        """RFC 9110 13.2.2: If-None-Match when sent, else If-Modified-Since."""
        none_match = since = None
        for name, value in headers:
            if name == b"if-none-match":
                none_match = value
            elif name == b"if-modified-since":
                since = value
        if none_match is not None:
            return etag_matches(none_match, found.etag)
        return since is not None and unmodified_since(since, found.mtime)


def _personal(found: StaticFile) -> StaticFile:
    """The file's answer with `private, no-store` for its Cache-Control."""
    return replace(
        found,
        headers=_no_store(found.headers),
        not_modified=_no_store(found.not_modified),
    )


def _no_store(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    kept = [(name, value) for name, value in headers if name != b"cache-control"]
    return [*kept, *PERSONAL_CACHE]


async def _stream(send: Send, path: str) -> int:
    """A large file in chunks; a file gone or cut short ends the answer unfinished
    (the status is out already), so the visitor sees a broken body, not a short one."""
    sent = 0
    try:
        with open(path, "rb") as file:
            while chunk := file.read(CHUNK):
                body = {"type": "http.response.body", "body": chunk, "more_body": True}
                await send(body)
                sent += len(chunk)
    except OSError:
        return sent
    await send({"type": "http.response.body", "body": b""})
    return sent
