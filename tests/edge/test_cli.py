"""`python manage.py edge ...` as an operator runs it; the edge's start-up checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.edge import DEFAULT_REDIS_URL, edge_command
from tests.support.processes import ROOT, free_port

REDIS_URL = os.environ.get("REDIS_URL", DEFAULT_REDIS_URL)


@pytest.fixture
def mode_key() -> Iterator[str]:
    key = f"edge:test:{uuid.uuid4().hex}:mode"
    yield key
    redis.Redis.from_url(REDIS_URL).delete(key, key + ":version")


def edge_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "edge", *args],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": REDIS_URL, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_mode_is_stored_in_redis_with_a_version(mode_key: str) -> None:
    # given no mode yet, when the operator asks, then the default is shown
    shown = edge_cli("mode", EDGE_MODE_KEY=mode_key)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "mode: legacy (default, nothing stored)"
    # when they set canary 10 %
    result = edge_cli("mode", "canary", "--percent", "10", EDGE_MODE_KEY=mode_key)
    # then Redis holds it, with a version the workers follow
    assert result.returncode == 0, result.stderr
    assert "mode: canary 10% (version 1)" in result.stdout
    raw = redis.Redis.from_url(REDIS_URL).get(mode_key)
    assert raw is not None
    stored = json.loads(raw)
    assert (stored["mode"], stored["percent"], stored["version"]) == ("canary", 10, 1)
    assert "canary 10% (version 1)" in edge_cli("mode", EDGE_MODE_KEY=mode_key).stdout


def test_switching_the_mode_needs_no_admin_token(mode_key: str, tmp_path: Path) -> None:
    # Given no admin token in the environment and no secrets file (the CLI writes
    # the mode to Redis itself; only the edge's admin API wants the token)
    env = {k: v for k, v in os.environ.items() if k != "EDGE_ADMIN_TOKEN"}
    env |= {"DEVSTACK_DATA_DIR": str(tmp_path), "DJANGO_DEBUG": "0"}
    result = subprocess.run(
        [sys.executable, "manage.py", "edge", "mode", "strangler"],
        cwd=ROOT,
        env={**env, "REDIS_URL": REDIS_URL, "EDGE_MODE_KEY": mode_key},
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then the operator switches the mode all the same
    assert result.returncode == 0, result.stderr
    assert "mode: strangler (version 1)" in result.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["mode", "canary"], 1, "canary needs a percent (0-100)"),
        (["mode", "legacy", "--percent", "5"], 1, "percent applies to canary only"),
        (["mode", "--percent", "5"], 1, "--percent needs a mode"),
        (["mode", "canary", "--percent", "101"], 2, "a whole number 0-100, not '101'"),
        (["mode", "canary", "--percent", "ten"], 2, "a whole number 0-100, not 'ten'"),
        (["mode", "sideways"], 2, "invalid choice: 'sideways'"),
        ([], 2, "the following arguments are required"),
        (["export", "haproxy"], 2, "invalid choice: 'haproxy'"),
        (
            ["export", "nginx", "--profile", "canary"],
            1,
            "canary mode is the Python edge's own",
        ),
        (["export", "nginx", "--listen", "8000"], 1, "--listen must be HOST:PORT"),
        (["export", "nginx", "--listen", "a:99999"], 1, "--listen must be HOST:PORT"),
        (["export", "envoy", "-o", "/nonexistent/dir/edge.json"], 1, "Envoy serves no"),
        (["export", "nginx", "-o", "/nonexistent/dir/edge.conf"], 1, "cannot write"),
    ],
)
def test_bad_commands_fail_with_a_clear_message(
    mode_key: str, args: list[str], code: int, message: str
) -> None:
    result = edge_cli(*args, EDGE_MODE_KEY=mode_key)
    assert result.returncode == code
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert redis.Redis.from_url(REDIS_URL).get(mode_key) is None


def test_an_unreachable_redis_is_reported_not_raised(mode_key: str) -> None:
    result = edge_cli(
        "mode", "strangler", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"
    )
    assert result.returncode == 1
    assert "cannot reach Redis" in result.stderr
    assert "Traceback" not in result.stderr


def test_routes_prints_both_profiles_in_order(mode_key: str) -> None:
    result = edge_cli("routes", EDGE_MODE_KEY=mode_key, ORDERS_URL="http://orders:8002")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "mode in force: legacy" in text
    assert "orders   http://orders:8002  (ORDERS_URL)" in text
    strangler = text.split("profile strangler:")[1]
    names = [
        line.split()[1]
        for line in strangler.splitlines()[2:]
        if line.strip()[:1].isdigit()
    ]
    assert names == [
        "internal-deny", "muskie-buy", "tourney-buy", "checkout", "tourney-page",
        "muskie-page", "muskie-assets", "muskie-product", "api-order", "orders-api",
        "orders-ws", "sale-board", "orders-static", "default",
    ]  # fmt: skip
    assert "rate 5/s burst 10" in text
    assert "deny: 404, no origin" in text
    # each behaviour's share of requests traced: the purchases all, the rest 5 %
    assert "rate 5/s burst 10, trace 1" in text
    assert "timeout 30s, body 1048576, trace 0.05" in text
    doc = json.loads(edge_cli("routes", "--json", EDGE_MODE_KEY=mode_key).stdout)
    assert set(doc["profiles"]) == {"legacy", "strangler"}
    legacy = doc["profiles"]["legacy"]
    assert [b["trace"] for b in legacy] == [0.05, 1.0, 1.0, 1.0, 0.05, 0.05]


def test_export_writes_a_file_nginx_accepts(tmp_path: Path) -> None:
    target = tmp_path / "nginx.conf"
    result = edge_cli(
        "export", "nginx", "--listen", f"127.0.0.1:{free_port()}", "-o", str(target)
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {target}" in result.stdout
    check = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(target)],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr


def test_a_broken_route_table_is_named_by_the_cli_and_stops_the_edge(
    tmp_path: Path,
) -> None:
    # given a table with two mistakes
    table = tmp_path / "routes.toml"
    table.write_text(
        '[origins]\nshop = { env = "SHOP_URL", default = "http://127.0.0.1:8001" }\n'
        '[[profiles.legacy]]\nname = "default"\npath = "/*"\norigin = "shop"\n'
        "timeout = 0\n"
    )
    # when the CLI reads it, then it lists both problems
    result = edge_cli("routes", EDGE_ROUTES_FILE=str(table))
    assert result.returncode == 1
    assert "timeout must be above zero" in result.stderr
    assert "profile 'strangler' has no behaviours" in result.stderr
    # and an edge started with it refuses to start, saying the same
    started = subprocess.run(
        edge_command(free_port(), workers=1),
        cwd=ROOT,
        env={**os.environ, "EDGE_ROUTES_FILE": str(table), "REDIS_URL": REDIS_URL},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "timeout must be above zero" in started.stdout + started.stderr
    assert "Application startup failed" in started.stdout + started.stderr


def test_the_edge_refuses_to_start_on_a_bad_setting() -> None:
    started = subprocess.run(
        edge_command(free_port(), workers=1),
        cwd=ROOT,
        env={**os.environ, "EDGE_DEFAULT_MODE": "canary:abc", "REDIS_URL": REDIS_URL},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode != 0
    assert "EDGE_DEFAULT_MODE='canary:abc'" in started.stdout + started.stderr
