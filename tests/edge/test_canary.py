"""The canary's side for a visitor: a random visitor id, hashed as nginx's
split_clients hashes it, so both engines agree on every visitor."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterator

import httpx
import pytest

from edge_router.canary import (
    VISITOR_COOKIE,
    canary_threshold,
    in_canary,
    murmur_hash2,
)
from tests.edge.cases import MUSKIE
from tests.support.edge import Process, edge_process, nginx_process, set_mode
from tests.support.processes import free_port

PERCENTS = [1, 10, 25, 50, 99, 100]

# Answered by the origins in both profiles (the Muskie page itself is static).
MUSKIE_ORDER = MUSKIE + "orders/42/"


def split_clients_config(port: int) -> str:
    """nginx answering, for `?id=X`, the side split_clients picks at each percent."""
    blocks = "\n".join(
        f'    split_clients "$arg_id" $side{p} {{ {p}% strangler; * legacy; }}'
        for p in PERCENTS
    )
    sides = " ".join(f"$side{p}" for p in PERCENTS)
    return f"""
worker_processes 1;
pid nginx.pid;
error_log stderr warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
{blocks}
    server {{
        listen 127.0.0.1:{port};
        location / {{ default_type text/plain; return 200 "{sides}"; }}
    }}
}}
"""


@pytest.fixture(scope="module")
def split_clients() -> Iterator[Process]:
    port = free_port()
    with nginx_process(split_clients_config(port), port) as nginx:
        yield nginx


def test_the_edge_and_nginx_split_clients_put_every_visitor_on_the_same_side(
    split_clients: Process,
) -> None:
    # given visitor ids of every length (each tail of MurmurHash2's last word) and
    # random ones as the edge draws them
    letters = string.ascii_letters + string.digits
    ids = [
        "".join(secrets.choice(letters) for _ in range(n))
        for n in range(1, 41)
        for _ in range(3)
    ] + [secrets.token_hex(16) for _ in range(300)]
    with httpx.Client(base_url=split_clients.url) as client:
        for visitor in ids:
            # when nginx's split_clients and the edge each pick a side
            nginx_sides = client.get("/", params={"id": visitor}).text.split()
            edge_sides = [
                "strangler" if in_canary(visitor, p) else "legacy" for p in PERCENTS
            ]
            # then they pick the same, at every percent
            assert edge_sides == nginx_sides, visitor


def test_murmur_hash2_matches_nginx_on_fixed_vectors() -> None:
    # (values checked against nginx's split_clients above; pinned here so a change
    # to the hash shows without nginx)
    assert murmur_hash2(b"") == 0
    assert murmur_hash2(b"a") == 2456313694
    assert murmur_hash2(b"abcd") == 646393889
    assert murmur_hash2(b"hello world") == 1151865881
    assert canary_threshold(100) == 0xFFFFFFFF
    assert canary_threshold(10) == 429496729
    assert not in_canary("anything", 0)


def test_raising_the_percent_only_moves_visitors_into_the_canary() -> None:
    visitors = [secrets.token_hex(16) for _ in range(2000)]
    before = {v for v in visitors if in_canary(v, 10)}
    after = {v for v in visitors if in_canary(v, 30)}
    assert before <= after
    assert 0.06 <= len(before) / len(visitors) <= 0.14


def test_a_forged_or_malformed_visitor_id_is_replaced_and_a_valid_one_decides(
    any_edge: Process,
) -> None:
    edge = any_edge
    # given canary at 50 %
    set_mode(edge, "canary", 50)
    try:
        # when a visitor sends a bucket-like value, or anything not 32 hex digits
        for forged in ["0", "99", "strangler", "A" * 32, "0" * 31, "'; drop"]:
            answer = httpx.get(
                edge.url + MUSKIE_ORDER,
                headers={"Cookie": f"{VISITOR_COOKIE}={forged}"},
            )
            # then the edge draws a new id for it, and that id decides its side
            cookie = answer.headers["set-cookie"]
            assert cookie.startswith(f"{VISITOR_COOKIE}=")
            # (an answer carrying a visitor's new id is that visitor's alone)
            assert answer.headers["cache-control"] == "private, no-store"
            drawn = cookie.split(";")[0].split("=", 1)[1]
            assert len(drawn) == 32
            side = "orders" if in_canary(drawn, 50) else "shop"
            assert answer.headers["x-origin"] == side
        # and a well-formed id is kept, its side the hash's, request after request
        for visitor in [secrets.token_hex(16) for _ in range(20)]:
            answer = httpx.get(
                edge.url + MUSKIE_ORDER,
                headers={"Cookie": f"{VISITOR_COOKIE}={visitor}"},
            )
            assert "set-cookie" not in answer.headers
            assert "cache-control" not in answer.headers
            side = "orders" if in_canary(visitor, 50) else "shop"
            assert answer.headers["x-origin"] == side
    finally:
        set_mode(edge, "legacy")


@pytest.fixture(scope="module")
def nginx_edge(shop_origin: Process, orders_origin: Process) -> Iterator[Process]:
    with edge_process(shop_origin.url, orders_origin.url, engine="nginx") as edge:
        yield edge


def _side(edge: Process, visitor: str) -> str:
    answer = httpx.get(
        edge.url + MUSKIE_ORDER, headers={"Cookie": f"{VISITOR_COOKIE}={visitor}"}
    )
    assert answer.status_code == 200, answer.text
    assert "set-cookie" not in answer.headers
    return answer.headers["x-origin"]


def test_one_visitor_id_gets_the_same_side_through_both_engines(
    edge: Process, nginx_edge: Process
) -> None:
    # given both engines in canary mode at 30 %
    set_mode(edge, "canary", 30)
    set_mode(nginx_edge, "canary", 30)
    try:
        # when many visitors, each with its own id, go through each engine
        visitors = [secrets.token_hex(16) for _ in range(150)]
        sides = {v: (_side(edge, v), _side(nginx_edge, v)) for v in visitors}
    finally:
        set_mode(edge, "legacy")
        set_mode(nginx_edge, "legacy")
    # then each visitor is on the same side in both, the side its id hashes to
    for visitor, (python_side, nginx_side) in sides.items():
        expected = "orders" if in_canary(visitor, 30) else "shop"
        assert (python_side, nginx_side) == (expected, expected), visitor
    # and both sides were drawn
    assert {python for python, _ in sides.values()} == {"orders", "shop"}
