"""A static origin (a directory the edge serves itself), through the Python edge and
through its nginx export under a real nginx: the same cases, the same answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest

from edge_router.routes import RouteTableError, parse_table
from tests.support.edge import RawAnswer, edge_process, nginx_process, raw_request
from tests.support.processes import ROOT, free_port

CSS = b"body { color: #123; }\n"
PAGE = b"<!doctype html><title>site</title><h1>the site</h1>\n"
SECRET = b"nobody outside may read this\n"
# Every profile must deny the shop's internal API, a static one too.
INTERNAL_DENY = {"name": "internal-deny", "path": "/internal/*", "kind": "deny"}
TABLE = """
[origins]
site = {{ dir = "{root}", cache_control = "public, max-age=60", headers = {{ X-Content-Type-Options = "nosniff" }} }}

[[profiles.legacy]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"

[[profiles.legacy]]
name = "default"
path = "/*"
origin = "site"

[[profiles.strangler]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"

[[profiles.strangler]]
name = "default"
path = "/*"
origin = "site"
"""  # noqa: E501


@pytest.fixture(scope="module")
def site() -> Iterator[Path]:
    """<tmp>/root is the origin's directory; <tmp>/secret.txt sits beside it.
    Readable by all: nginx's workers, started by root, run as nobody."""
    base = Path(tempfile.mkdtemp(prefix="static-origin-"))
    base.chmod(0o755)
    try:
        yield _site_tree(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _site_tree(base: Path) -> Path:
    (base / "secret.txt").write_bytes(SECRET)
    root = base / "root"
    (root / "site" / "css").mkdir(parents=True)
    (root / "site" / "empty").mkdir()
    (root / "site" / "index.html").write_bytes(PAGE)
    (root / "site" / "css" / "a.css").write_bytes(CSS)
    (root / "site" / "big.bin").write_bytes(os.urandom(300 * 1024))
    (root / "site" / "out.txt").symlink_to(base / "secret.txt")
    (root / "site" / "in.css").symlink_to(root / "site" / "css" / "a.css")
    (root / "site" / "outdir").symlink_to(base, target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def routes_file(site: Path) -> Path:
    path = site.parent / "routes.toml"
    path.write_text(TABLE.format(root=site))
    return path


def exported(routes_file: Path, port: int) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "edge", "export", "nginx",
         "--profile", "strangler", "--listen", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env={"EDGE_ROUTES_FILE": str(routes_file), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def ports(routes_file: Path) -> Iterator[dict[str, int]]:
    """{"edge": port, "nginx": port}, both serving the same directory."""
    unused = f"http://127.0.0.1:{free_port()}"
    port = free_port()
    with (
        edge_process(
            unused, unused, workers=1, EDGE_ROUTES_FILE=str(routes_file)
        ) as edge,
        nginx_process(exported(routes_file, port), port) as nginx,
    ):
        yield {"edge": edge.bound_port, "nginx": nginx.bound_port}


PROXIES = ["edge", "nginx"]


def get(port: int, path: str, method: str = "GET", **headers: str) -> RawAnswer:
    return raw_request(port, method, path, headers=headers)


def validators(path: Path) -> tuple[str, str]:
    """(ETag, Last-Modified) as both proxies write them for a file."""
    info = path.stat()
    mtime = int(info.st_mtime)
    return f'"{mtime:x}-{info.st_size:x}"', formatdate(mtime, usegmt=True)


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_file_is_served_with_its_type_validators_and_cache_headers(
    ports: dict[str, int], site: Path, proxy: str
) -> None:
    # given a CSS file in the directory
    etag, modified = validators(site / "site" / "css" / "a.css")
    # when it is asked for
    answer = get(ports[proxy], "/site/css/a.css")
    # then it comes whole, with its type, validators and the origin's headers
    assert answer.status == 200
    assert answer.body == CSS
    assert answer.headers["content-type"] == "text/css; charset=utf-8"
    assert answer.headers["content-length"] == str(len(CSS))
    assert answer.headers["etag"] == etag
    assert answer.headers["last-modified"] == modified
    assert answer.headers["cache-control"] == "public, max-age=60"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert (answer.headers["x-edge-route"], answer.headers["x-edge-origin"]) == (
        "default",
        "site",
    )


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("path", ["/site/", "/site", "/site//", "/x/../site/"])
def test_a_directory_is_its_index_html(
    ports: dict[str, int], proxy: str, path: str
) -> None:
    answer = get(ports[proxy], path)
    assert answer.status == 200, path
    assert answer.body == PAGE
    assert answer.headers["content-type"] == "text/html; charset=utf-8"


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("path", ["/site/empty/", "/site/empty", "/", "/site/css/"])
def test_a_directory_without_an_index_is_a_404_never_a_listing(
    ports: dict[str, int], proxy: str, path: str
) -> None:
    answer = get(ports[proxy], path)
    assert answer.status == 404, path
    assert answer.body == b"Not found\n"
    assert b"a.css" not in answer.body


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_missing_file_is_a_404_and_its_head_has_no_body(
    ports: dict[str, int], proxy: str
) -> None:
    answer = get(ports[proxy], "/site/css/missing.css")
    assert answer.status == 404
    assert answer.body == b"Not found\n"
    assert answer.headers["x-edge-origin"] == "site"
    head = get(ports[proxy], "/site/css/missing.css", "HEAD")
    assert (head.status, head.body) == (404, b"")


@pytest.mark.parametrize("proxy", PROXIES)
def test_head_has_the_headers_of_get_and_no_body(
    ports: dict[str, int], proxy: str
) -> None:
    full = get(ports[proxy], "/site/css/a.css")
    head = get(ports[proxy], "/site/css/a.css", "HEAD")
    assert head.status == 200
    assert head.body == b""
    for name in ("content-type", "content-length", "etag", "last-modified"):
        assert head.headers[name] == full.headers[name], name


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_conditional_get_of_an_unchanged_file_is_a_304(
    ports: dict[str, int], site: Path, proxy: str
) -> None:
    # given the file's validators
    etag, modified = validators(site / "site" / "css" / "a.css")
    port = ports[proxy]
    # when the visitor asks again with them, then nothing is sent but the 304
    for headers in (
        {"If-None-Match": etag},
        {"If-None-Match": f'"nope", W/{etag}'},
        {"If-None-Match": "*"},
        {"If-Modified-Since": modified},
        {"If-Modified-Since": formatdate(time.time() + 60, usegmt=True)},
    ):
        answer = get(port, "/site/css/a.css", **headers)
        assert answer.status == 304, headers
        assert answer.body == b""
        assert answer.headers["etag"] == etag
        assert answer.headers["cache-control"] == "public, max-age=60"
    # and a changed or older validator gets the file
    for headers in (
        {"If-None-Match": '"0-0"'},
        {"If-Modified-Since": formatdate(0, usegmt=True)},
    ):
        answer = get(port, "/site/css/a.css", **headers)
        assert (answer.status, answer.body) == (200, CSS), headers


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_a_method_other_than_get_or_head_is_a_405(
    ports: dict[str, int], proxy: str, method: str
) -> None:
    answer = raw_request(ports[proxy], method, "/site/css/a.css", body=b"x=1")
    assert answer.status == 405
    assert answer.headers["allow"] == "GET, HEAD"
    assert answer.headers["x-edge-route"] == "default"


ESCAPES = [
    "/../secret.txt",
    "/site/../../secret.txt",
    "/site/%2e%2e/%2e%2e/secret.txt",
    "/site/..%2f..%2fsecret.txt",
    "/site/%252e%252e/%252e%252e/secret.txt",
    "/site/out.txt",
    "/site/outdir/secret.txt",
    "/site/in.css",
]


@pytest.mark.parametrize("proxy", PROXIES)
@pytest.mark.parametrize("path", ESCAPES)
def test_no_path_reads_a_file_outside_the_root_nor_follows_a_symlink(
    ports: dict[str, int], proxy: str, path: str
) -> None:
    answer = get(ports[proxy], path)
    assert answer.status in {400, 404}, path
    assert SECRET not in answer.body
    assert CSS not in answer.body


@pytest.mark.parametrize("proxy", PROXIES)
def test_a_large_file_comes_whole(
    ports: dict[str, int], site: Path, proxy: str
) -> None:
    answer = get(ports[proxy], "/site/big.bin")
    assert answer.status == 200
    assert answer.body == (site / "site" / "big.bin").read_bytes()
    assert answer.headers["content-type"] == "application/octet-stream"


def test_a_rebuilt_file_is_served_within_a_second_or_so(
    ports: dict[str, int], site: Path
) -> None:
    # given a file the edge has served (and remembers)
    path = site / "site" / "rebuilt.html"
    path.write_bytes(b"first\n")
    assert get(ports["edge"], "/site/rebuilt.html").body == b"first\n"
    # when the site is rebuilt (a new file put in its place)
    fresh = path.with_suffix(".tmp")
    fresh.write_bytes(b"second build\n")
    os.replace(fresh, path)
    # then the new file is served, with its own validators, within the recheck time
    deadline = time.monotonic() + 5
    answer = get(ports["edge"], "/site/rebuilt.html")
    while answer.body != b"second build\n" and time.monotonic() < deadline:
        time.sleep(0.2)
        answer = get(ports["edge"], "/site/rebuilt.html")
    assert answer.body == b"second build\n"
    assert answer.headers["etag"] == validators(path)[0]


def test_a_websocket_to_a_static_origin_is_refused(ports: dict[str, int]) -> None:
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{ports['edge']}/site/", open_timeout=5)
    assert refused.value.response.status_code == 403


def test_the_table_lists_every_problem_of_a_static_origin() -> None:
    # given a directory origin with one mistake of each kind
    data = {
        "origins": {
            "site": {
                "dir": "/srv/$site",
                "env": "lower",
                "cache_control": 'say "hi"',
                "headers": {"ETag": "x", "X-Ok": "fine", "X-Bad": "a\\b"},
                "default": "http://127.0.0.1:1",
            }
        },
        "profiles": {
            p: [INTERNAL_DENY, {"name": "default", "path": "/*", "origin": "site"}]
            for p in ("legacy", "strangler")
        },
    }
    # when the table is read, then every one is listed
    with pytest.raises(RouteTableError) as error:
        parse_table(data, source="test", env={})
    problems = "\n".join(error.value.problems)
    for expected in (
        "unknown key 'default' for a directory origin",
        "env must be an environment variable name",
        "dir must be a directory path",
        "cache_control",
        "header 'ETag' is not a name the table may set",
        "header 'X-Bad'",
    ):
        assert expected in problems, (expected, problems)
    assert "X-Ok" not in problems


def test_a_static_origins_dir_comes_from_its_variable_and_the_checkout(
    tmp_path: Path,
) -> None:
    data = {
        "origins": {"site": {"dir": "relative/site", "env": "SITE_DIR"}},
        "profiles": {
            p: [INTERNAL_DENY, {"name": "default", "path": "/*", "origin": "site"}]
            for p in ("legacy", "strangler")
        },
    }
    relative = parse_table(data, source="test", env={}).origins["site"]
    assert relative.root == ROOT / "relative" / "site"
    given = parse_table(data, source="test", env={"SITE_DIR": str(tmp_path)})
    assert given.origins["site"].root == tmp_path


def test_a_static_origin_may_not_take_the_private_paths() -> None:
    # given a table whose static behaviour covers /internal/* with no deny first
    data = {
        "origins": {"site": {"dir": "relative/site"}},
        "profiles": {
            p: [{"name": "default", "path": "/*", "origin": "site"}]
            for p in ("legacy", "strangler")
        },
    }
    # when it is read, then it is refused as a proxying one would be
    with pytest.raises(RouteTableError) as error:
        parse_table(data, source="test", env={})
    assert "sends private paths" in "\n".join(error.value.problems)


OVERRIDE_TABLE = """
[origins]
site = {{ dir = "{root}", cache_control = "public, max-age=60" }}
""" + "".join(
    f"""
[[profiles.{profile}]]
name = "internal-deny"
path = "/internal/*"
kind = "deny"

[[profiles.{profile}]]
name = "site-css"
path = "/site/css/*"
origin = "site"
cache_control = "public, max-age=600"
max_body = 16

[[profiles.{profile}]]
name = "default"
path = "/*"
origin = "site"
"""
    for profile in ("legacy", "strangler")
)


def test_a_behaviours_cache_control_a_body_and_a_drawn_visitor_on_a_static_origin(
    site: Path, tmp_path: Path
) -> None:
    # given an edge in canary mode whose static behaviour for /site/css/ says its
    # own Cache-Control and takes 16 bytes of body at most
    routes_file = tmp_path / "routes.toml"
    routes_file.write_text(OVERRIDE_TABLE.format(root=site))
    unused = f"http://127.0.0.1:{free_port()}"
    with edge_process(
        unused,
        unused,
        workers=1,
        EDGE_ROUTES_FILE=str(routes_file),
        EDGE_DEFAULT_MODE="canary:50",
    ) as edge:
        port, visitor = (
            edge.bound_port,
            {"Cookie": "edge_visitor=" + "0123456789abcdef" * 2},
        )
        # when a visitor with an id asks, then the behaviour's Cache-Control
        # replaces the origin's, and only on its own paths
        css = get(port, "/site/css/a.css", **visitor)
        assert (css.status, css.body) == (200, CSS)
        assert css.headers["Cache-Control"] == "public, max-age=600"
        page = get(port, "/site/", **visitor)
        assert page.headers["Cache-Control"] == "public, max-age=60"
        # and a body is held to the behaviour's max_body, as a proxied one is
        big = raw_request(port, "GET", "/site/css/a.css", body=b"x" * 64)
        assert big.status == 413, big.body
        small = raw_request(port, "GET", "/site/css/a.css", body=b"x" * 8)
        assert (small.status, small.body) == (200, CSS)
        # and the answer that draws a new visitor id is nobody else's
        first = get(port, "/site/css/a.css")
        assert "edge_visitor=" in first.headers["Set-Cookie"]
        assert first.headers["Cache-Control"] == "private, no-store"
        assert first.body == CSS
