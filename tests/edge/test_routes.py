"""The route table as data: loading, validation, matching, normalisation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge_router.export import ExportError
from edge_router.export_envoy import envoy_config
from edge_router.limits import TokenBuckets
from edge_router.modes import ModeError, mode_parse_default, mode_validate
from edge_router.paths import BadPath, match_key, normalise
from edge_router.routes import (
    RouteTable,
    RouteTableError,
    load_table,
    parse_rate,
    parse_table,
)
from tests.edge.cases import PROFILE_CASES, variants

ENV = {"SHOP_URL": "http://127.0.0.1:8001", "ORDERS_URL": "http://127.0.0.1:8002"}


@pytest.fixture(scope="module")
def table() -> RouteTable:
    return load_table(env=ENV)


def route_of(
    table: RouteTable, profile: str, method: str, raw_path: str
) -> tuple[str, str]:
    behaviour = table.profiles[profile].match(method, match_key(normalise(raw_path)))
    return behaviour.name, behaviour.origin.name


ALL_CASES = [
    (profile, method, path, route, origin)
    for profile, cases in PROFILE_CASES.items()
    for method, path, route, origin in cases
]


@pytest.mark.parametrize(("profile", "method", "path", "route", "origin"), ALL_CASES)
def test_each_request_matches_the_behaviour_the_table_says(
    table: RouteTable, profile: str, method: str, path: str, route: str, origin: str
) -> None:
    # given the project's table, when a request is matched, then the first match wins
    assert route_of(table, profile, method, path) == (route, origin)


VARIANT_CASES = [
    (profile, method, path, kind, variant, route)
    for profile, cases in PROFILE_CASES.items()
    for method, path, route, _ in cases
    for kind, variant in variants(path).items()
]


@pytest.mark.parametrize(
    ("profile", "method", "path", "kind", "variant", "route"), VARIANT_CASES
)
def test_no_spelling_of_a_path_reaches_another_behaviour(
    table: RouteTable,
    profile: str,
    method: str,
    path: str,
    kind: str,
    variant: str,
    route: str,
) -> None:
    # given a path spelt another way (dot segments, slashes, escapes, case, slash)
    # when it is matched, then it reaches the canonical path's behaviour
    assert route_of(table, profile, method, variant)[0] == route, (kind, variant)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("/shop/rods/../rods/muskie-casting-rod/", "/shop/rods/muskie-casting-rod/"),
        ("//shop//rods/muskie-casting-rod/", "/shop/rods/muskie-casting-rod/"),
        ("/shop/rods%2Fmuskie-casting-rod/", "/shop/rods/muskie-casting-rod/"),
        ("/shop/rods/%2E%2E/reels/", "/shop/reels/"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/shop/rods/.", "/shop/rods/"),
        ("/Shop/Rods/", "/Shop/Rods/"),
        ("/search/a%20b", "/search/a%20b"),
        ("/orders/ABC-123/", "/orders/ABC-123/"),
    ],
)
def test_normalise_resolves_like_the_origins_and_keeps_case(
    raw: str, normalised: str
) -> None:
    assert normalise(raw) == normalised


@pytest.mark.parametrize("raw", ["/a%00b", "/a%0Ab", "/%ff", "shop/", "/a\x7fb"])
def test_paths_no_origin_can_be_asked_for_are_refused(raw: str) -> None:
    with pytest.raises(BadPath):
        normalise(raw)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.toml"
    path.write_text(text)
    return path


def test_a_broken_table_is_refused_with_every_problem_listed(tmp_path: Path) -> None:
    # given a table with several mistakes at once
    path = write(
        tmp_path,
        """
[origins]
shop = { env = "SHOP_URL", default = "http://127.0.0.1:8001" }
bad = { env = "BAD_URL", default = "ftp://example" }

[[profiles.legacy]]
name = "first"
path = "/shop/*"
origin = "nowhere"
rate = "lots"
colour = "red"

[[profiles.legacy]]
name = "first"
path = "/api/*"
origin = "shop"
methods = ["FETCH"]
timeout = -1

[[profiles.strangler]]
name = "everything"
path = "/*"
origin = "shop"

[[profiles.strangler]]
name = "unreachable"
path = "/api/*"
origin = "shop"
""",
    )
    # when it is loaded
    with pytest.raises(RouteTableError) as caught:
        load_table(path, env={})
    # then one error lists every problem
    problems = "\n".join(caught.value.problems)
    for expected in [
        "origin 'bad': ftp://example is not an http://host[:port] URL",
        "origin 'nowhere' is not one of: bad, shop",
        "rate 'lots' is not of the form N/s or N/m",
        "unknown key 'colour'",
        "unknown methods ['FETCH']",
        "timeout must be above zero",
        "name 'first' twice",
        "the last behaviour must be the default",
        "'everything' matches everything, so the 1 behaviour(s) after it never do",
    ]:
        assert expected in problems
    assert str(path) in str(caught.value)


def test_an_origin_url_from_the_environment_is_validated(tmp_path: Path) -> None:
    with pytest.raises(RouteTableError) as caught:
        load_table(env={"SHOP_URL": "http://127.0.0.1:8001/shop", "ORDERS_URL": "nope"})
    problems = "\n".join(caught.value.problems)
    assert "SHOP_URL=http://127.0.0.1:8001/shop must not carry a path" in problems
    assert "ORDERS_URL=nope is not an http://host[:port] URL" in problems


SAMPLED_TABLE = """
origins.shop = { env = "SHOP_URL", default = "http://127.0.0.1:8001" }
defaults.trace = %s

[profiles]
legacy = [
  { name = "private", path = "/internal/*", kind = "deny" },
  { name = "buy", path = "/buy/", origin = "shop", trace = %s },
  { name = "default", path = "/*", origin = "shop" },
]
strangler = [
  { name = "private", path = "/internal/*", kind = "deny" },
  { name = "default", path = "/*", origin = "shop", trace = 0 },
]
"""


def _traces(table: RouteTable) -> dict[str, float]:
    return {
        f"{profile.name}/{b.name}": b.trace
        for profile in table.profiles.values()
        for b in profile.behaviours
        if not b.denied
    }


def test_a_behaviours_ratio_wins_over_the_default_which_the_environment_replaces(
    tmp_path: Path,
) -> None:
    # given a table whose default ratio is 0.05 and whose purchase says 1
    path = write(tmp_path, SAMPLED_TABLE % ("0.05", "1"))
    # when it is loaded with and without TRACES_SAMPLE_RATIO
    plain = load_table(path, env={})
    overridden = load_table(path, env={"TRACES_SAMPLE_RATIO": "0.5"})
    # then the environment replaces the default only, never a behaviour's own
    assert _traces(plain) == {
        "legacy/buy": 1.0, "legacy/default": 0.05, "strangler/default": 0.0,
    }  # fmt: skip
    assert _traces(overridden) == {
        "legacy/buy": 1.0, "legacy/default": 0.5, "strangler/default": 0.0,
    }  # fmt: skip
    assert plain.as_dict()["profiles"]["legacy"][1]["trace"] == 1.0


@pytest.mark.parametrize(
    ("default", "own", "env", "problem"),
    [
        ("1.5", "1", "", "[defaults]: trace must be from 0 to 1, not 1.5"),
        ('"all"', "1", "", "[defaults]: trace must be a number from 0 to 1"),
        ("0.1", "-0.1", "", "profiles.legacy[1] (buy): trace must be from 0 to 1"),
        ("0.1", "true", "", "(buy): trace must be a number from 0 to 1, not True"),
        ("0.1", "1", "half", "TRACES_SAMPLE_RATIO must be a number from 0 to 1"),
        ("0.1", "1", "nan", "TRACES_SAMPLE_RATIO must be from 0 to 1, not nan"),
        ("0.1", "1", "2", "TRACES_SAMPLE_RATIO must be from 0 to 1, not 2.0"),
    ],
)
def test_a_sampling_ratio_outside_0_to_1_is_refused_precisely(
    tmp_path: Path, default: str, own: str, env: str, problem: str
) -> None:
    path = write(tmp_path, SAMPLED_TABLE % (default, own))
    with pytest.raises(RouteTableError) as caught:
        load_table(path, env={"TRACES_SAMPLE_RATIO": env})
    assert problem in caught.value.problems[0]
    # said once, not once more for each behaviour that would inherit it
    assert len(caught.value.problems) == 1, caught.value.problems


@pytest.mark.parametrize(
    ("own", "env", "ratio"),
    [
        ('{ env = "PAGE_RATIO" }', {}, 0.05),
        ('{ env = "PAGE_RATIO" }', {"PAGE_RATIO": "1"}, 1.0),
        ('{ env = "PAGE_RATIO" }', {"TRACES_SAMPLE_RATIO": "0.5"}, 0.5),
        ('{ env = "PAGE_RATIO", default = 0.2 }', {}, 0.2),
        ('{ env = "PAGE_RATIO", default = 0.2 }', {"PAGE_RATIO": "0"}, 0.0),
    ],
)
def test_a_behaviours_ratio_may_come_from_a_variable_of_its_own(
    tmp_path: Path, own: str, env: dict[str, str], ratio: float
) -> None:
    # given a behaviour whose ratio names an environment variable
    path = write(tmp_path, SAMPLED_TABLE % ("0.05", own))
    # when the table is loaded with or without that variable
    table = load_table(path, env=env)
    # then the variable's ratio wins, else the behaviour's default, else the table's
    assert _traces(table)["legacy/buy"] == ratio


@pytest.mark.parametrize(
    ("own", "env", "problem"),
    [
        ('{ env = "PAGE_RATIO" }', {"PAGE_RATIO": "all"}, "PAGE_RATIO must be a"),
        ('{ env = "PAGE_RATIO" }', {"PAGE_RATIO": "3"}, "PAGE_RATIO must be from"),
        ('{ env = "page" }', {}, "(buy): trace must be a number or { env"),
        ('{ env = "X", rate = 1 }', {}, "(buy): trace must be a number or { env"),
        ('{ env = "X", default = 2 }', {}, "(buy): trace must be from 0 to 1"),
    ],
)
def test_a_wrong_ratio_variable_is_refused_precisely(
    tmp_path: Path, own: str, env: dict[str, str], problem: str
) -> None:
    path = write(tmp_path, SAMPLED_TABLE % ("0.05", own))
    with pytest.raises(RouteTableError) as caught:
        load_table(path, env=env)
    assert problem in caught.value.problems[0]
    assert len(caught.value.problems) == 1, caught.value.problems


@pytest.mark.parametrize("profile", ["legacy", "strangler"])
def test_the_tourney_page_is_cheap_unless_its_variable_says_otherwise(
    profile: str,
) -> None:
    # given the project's table, loaded as `make demo` and as `make sale` start it
    demo = load_table(env={})
    sale = load_table(env={"TRACES_TOURNEY_PAGE_RATIO": "1"})
    key = match_key(normalise("/shop/rods/tourney-casting-rod/"))
    # then the watched page is sampled at the default in the demo, always in the sale
    for table, ratio in ((demo, 0.05), (sale, 1.0)):
        behaviour = table.profiles[profile].match("GET", key)
        assert (behaviour.name, behaviour.trace) == ("tourney-page", ratio)
    # and the sale's variable touches no other behaviour
    assert _traces(demo).keys() == _traces(sale).keys()
    changed = {k for k in _traces(demo) if _traces(demo)[k] != _traces(sale)[k]}
    assert changed == {"legacy/tourney-page", "strangler/tourney-page"}


PURCHASES = [
    ("POST", "/shop/rods/muskie-casting-rod/buy/"),
    ("POST", "/shop/rods/tourney-casting-rod/buy/"),
    ("POST", "/basket/checkout"),
]


@pytest.mark.parametrize("profile", ["legacy", "strangler"])
def test_every_profile_traces_every_purchase(table: RouteTable, profile: str) -> None:
    # given the project's table, whatever the default ratio says
    purchases = PURCHASES + (
        [("POST", "/api/orders/")] if profile == "strangler" else []
    )
    for method, path in purchases:
        # then each purchase has a behaviour of its own, traced always
        behaviour = table.profiles[profile].match(method, match_key(normalise(path)))
        assert behaviour.name != "default", path
        assert behaviour.trace == 1.0, (path, behaviour.name)
    # and the rest of the shop is sampled at the table's default
    assert table.profiles[profile].behaviours[-1].trace == 0.05


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[origins", "not valid TOML"),
        ("", "[origins] must name at least one origin"),
        (
            '[origins]\nshop = { env = "SHOP_URL", default = "http://a:1" }\n'
            "[profiles]\n"
            "canary = []",
            "unknown profile 'canary'",
        ),
    ],
)
def test_unreadable_or_empty_tables_are_refused(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(RouteTableError) as caught:
        load_table(write(tmp_path, text), env={})
    assert any(problem in p for p in caught.value.problems)


def test_a_missing_table_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RouteTableError, match="cannot read"):
        load_table(tmp_path / "absent.toml", env={})


def test_rates_read_per_second_and_per_minute() -> None:
    assert parse_rate("5/s", 10).per_second == 5
    assert parse_rate("30/m", None).per_second == 0.5
    assert parse_rate("30/m", None).burst == 30


def test_a_token_bucket_admits_a_burst_then_asks_to_retry_later() -> None:
    # given a bucket of 2 per second with a burst of 3
    buckets = TokenBuckets(parse_rate("2/s", 3))
    # when a client sends 4 requests at once, then the 4th waits a second
    assert [buckets.take("a", now=100.0) for _ in range(4)] == [0, 0, 0, 1]
    # and another client has its own bucket
    assert buckets.take("b", now=100.0) == 0
    # and half a second later one token is back
    assert buckets.take("a", now=100.5) == 0
    assert buckets.take("a", now=100.5) == 1


@pytest.mark.parametrize(
    ("mode", "percent", "message"),
    [
        ("sideways", None, "mode must be one of legacy, strangler, canary"),
        ("canary", None, "canary needs a percent"),
        ("canary", 101, "between 0 and 100"),
        ("canary", "10", "whole number"),
        ("canary", True, "whole number"),
        ("legacy", 10, "percent applies to canary only"),
    ],
)
def test_modes_are_validated_precisely(
    mode: object, percent: object, message: str
) -> None:
    with pytest.raises(ModeError, match=message):
        mode_validate(mode, percent)


def test_the_default_mode_reads_canary_with_a_percent() -> None:
    assert mode_parse_default("canary:10").percent == 10
    assert mode_parse_default("strangler").mode == "strangler"
    with pytest.raises(ModeError):
        mode_parse_default("legacy:5")


def _without_static(table: RouteTable) -> RouteTable:
    """The project's table with its static behaviours taken out (Envoy serves no
    files)."""
    import tomllib

    data = tomllib.loads(Path(table.source).read_text())
    static = {name for name, spec in data["origins"].items() if "dir" in spec}
    data["origins"] = {k: v for k, v in data["origins"].items() if k not in static}
    data["profiles"] = {
        name: [b for b in specs if b.get("origin") not in static]
        for name, specs in data["profiles"].items()
    }
    return parse_table(data, source=table.source, env=ENV)


def test_the_envoy_export_refuses_a_static_origin(table: RouteTable) -> None:
    with pytest.raises(ExportError, match="Envoy serves no files"):
        envoy_config(table, "strangler")


def test_the_envoy_export_keeps_order_matches_and_limits(table: RouteTable) -> None:
    # given the envoy export of the strangler profile (its static behaviours aside)
    import json

    table = _without_static(table)
    bootstrap = json.loads(envoy_config(table, "strangler", listen="0.0.0.0:8000"))
    listener = bootstrap["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    routes = manager["route_config"]["virtual_hosts"][0]["routes"]
    # then the routes are the behaviours, in order, and the limits came along
    assert [r["name"] for r in routes] == [
        b.name for b in table.profiles["strangler"].behaviours
    ]
    buy = next(r for r in routes if r["name"] == "muskie-buy")
    assert (
        buy["match"]["headers"][0]["string_match"]["safe_regex"]["regex"] == "^(POST)$"
    )
    assert "envoy.filters.http.local_ratelimit" in buy["typed_per_filter_config"]
    assert routes[0]["direct_response"]["status"] == 404
    assert manager["normalize_path"]
    assert manager["merge_slashes"]
    clusters = {c["name"] for c in bootstrap["static_resources"]["clusters"]}
    assert clusters == {"edge_shop", "edge_orders"}
    # and its regexes pick the same behaviour as the edge for every case
    for method, path, route, origin in PROFILE_CASES["strangler"]:
        if origin == "muskie-site":
            continue
        chosen = next(
            r["name"]
            for r in routes
            if re.match(r["match"]["safe_regex"]["regex"], normalise(path))
            and (
                "headers" not in r["match"]
                or re.match(
                    r["match"]["headers"][0]["string_match"]["safe_regex"]["regex"],
                    method,
                )
            )
        )
        assert chosen == route, path
