"""`deny` behaviours: the shop's internal API is never reachable through the edge.

The table refuses a profile that would send `/internal/*` to an origin; the running
edge answers every spelling of it with its own 404, in both modes, without asking an
origin.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_router.paths import match_key, normalise
from edge_router.routes import RouteTable, RouteTableError, load_table
from tests.support.edge import Process, raw_request, set_mode

ENV = {"SHOP_URL": "http://127.0.0.1:8001", "ORDERS_URL": "http://127.0.0.1:8002"}
SPELLINGS = [
    "/internal/stock/",
    "/internal/orders/?page=2",
    "/internal",
    "/INTERNAL/Stock",
    "/Internal/stock-transfers/",
    "//internal//stock/",
    "/shop/../internal/stock/",
    "/api/..%2f..%2finternal/orders/",
    "/api/%2e%2e/internal/stock/",
    "/%69nternal/stock/",
]
DEFAULT = '[[profiles.{p}]]\nname = "default"\npath = "/*"\norigin = "shop"\n'
DENY = '[[profiles.{p}]]\nname = "private"\npath = "/internal/*"\nkind = "deny"\n'
ORIGINS = '[origins]\nshop = { env = "SHOP_URL", default = "http://127.0.0.1:8001" }\n'


def table_text(legacy: str, strangler: str) -> str:
    return ORIGINS + legacy.format(p="legacy") + strangler.format(p="strangler")


def problems_of(tmp_path: Path, text: str) -> str:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    with pytest.raises(RouteTableError) as caught:
        load_table(path, env={})
    return "\n".join(caught.value.problems)


def test_a_profile_without_a_deny_for_internal_is_refused(tmp_path: Path) -> None:
    # given a table whose strangler profile sends /internal/* to the shop
    text = table_text(DENY + DEFAULT, DEFAULT)
    # when it is loaded, then it is refused, naming the profile and the leak
    problems = problems_of(tmp_path, text)
    assert "profile 'strangler' sends private paths (/internal/)" in problems
    assert "GET /internal/ -> default" in problems
    assert "profile 'legacy'" not in problems


def test_a_proxy_behaviour_before_the_deny_is_refused_in_any_spelling(
    tmp_path: Path,
) -> None:
    # given a narrower behaviour, spelt in capitals, placed before the deny
    early = (
        '[[profiles.{p}]]\nname = "stock"\npath = "/INTERNAL/stock*"\n'
        'origin = "shop"\nmethods = ["GET"]\n'
    )
    problems = problems_of(tmp_path, table_text(early + DENY + DEFAULT, DENY + DEFAULT))
    # then it is found, for the methods it takes only
    assert "GET /internal/stockx/ -> stock" in problems
    assert "POST /internal/stockx/" not in problems


def test_a_deny_behaviour_names_no_origin(tmp_path: Path) -> None:
    deny_to_shop = DENY + 'origin = "shop"\n'
    problems = problems_of(tmp_path, table_text(deny_to_shop + DEFAULT, DENY + DEFAULT))
    assert "a deny behaviour names no origin" in problems
    wrong_kind = DENY.replace('"deny"', '"drop"')
    problems = problems_of(tmp_path, table_text(wrong_kind + DEFAULT, DENY + DEFAULT))
    assert "kind must be one of proxy, deny" in problems


@pytest.mark.parametrize("profile", ["legacy", "strangler"])
@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_projects_table_denies_every_spelling_of_internal(
    profile: str, spelling: str
) -> None:
    table: RouteTable = load_table(env=ENV)
    key = match_key(normalise(spelling.partition("?")[0]))
    for method in ["GET", "POST", "PUT", "DELETE"]:
        assert table.profiles[profile].match(method, key).name == "internal-deny"


@pytest.mark.parametrize("mode", ["legacy", "strangler"])
def test_the_edge_answers_internal_itself_in_every_spelling_and_mode(
    edge: Process, mode: str
) -> None:
    # given the edge in this mode, in front of origins that echo what reaches them
    set_mode(edge, mode)
    for spelling in SPELLINGS:
        for method in ["GET", "POST"]:
            body = b'{"product": 1, "quantity": 5}' if method == "POST" else None
            # when a stranger asks for the internal API
            answer = raw_request(edge.bound_port, method, spelling, body=body)
            # then the edge says 404 itself: no origin saw the request
            assert answer.status == 404, (method, spelling)
            assert answer.body == b"Not found\n"
            assert answer.headers["x-edge-route"] == "internal-deny"
            assert answer.headers["x-edge-origin"] == "none"
            assert "x-origin" not in answer.headers
    # and a neighbouring path still reaches the shop
    near = raw_request(edge.bound_port, "GET", "/internalise/")
    assert near.status == 200
    assert near.headers["x-origin"] == "shop"
