"""The control room's pure parts: the p50/p99 from histogram buckets, the signed
session cookie, and the commands its buttons stand for."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edge_router.control_room import access, faults, sale, slowest
from edge_router.control_room.settings import control_settings
from edge_router.control_room.sources import quantile, window_difference

TOKEN = "a-token-for-the-parts"


def test_a_quantile_is_interpolated_within_its_bucket_as_prometheus_does() -> None:
    # Given 100 requests: 50 under 10 ms, 40 more under 20 ms, 10 more under 50 ms
    buckets = [(0.01, 50.0), (0.02, 90.0), (0.05, 100.0), (float("inf"), 100.0)]
    # Then the median is the top of the first bucket, the p99 most of the third's way
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.75, buckets) == pytest.approx(0.01 + 0.01 * 25 / 40)
    assert quantile(0.99, buckets) == pytest.approx(0.02 + 0.03 * 9 / 10)
    # And no request at all is no figure, not a zero
    assert quantile(0.5, [(0.01, 0.0), (float("inf"), 0.0)]) is None


def test_a_window_is_the_difference_of_two_readings_never_below_zero() -> None:
    then = [(0.01, 10.0), (0.02, 20.0), (float("inf"), 20.0)]
    now = [(0.01, 15.0), (0.02, 18.0), (float("inf"), 30.0)]
    assert window_difference(now, then) == [
        (0.01, 5.0),
        (0.02, 0.0),
        (float("inf"), 10.0),
    ]


def test_the_session_cookie_names_who_and_ends_with_its_time_or_its_token() -> None:
    # Given a cookie made for Ana with the admin token
    value = access.session_make(token=TOKEN, name="Ana", given=TOKEN)
    header = f"other=1; {access.COOKIE}={value}".encode()
    # Then it names her, holds no token, and no other key opens it
    assert access.session_who(token=TOKEN, cookie_header=header) == "Ana"
    assert TOKEN not in value
    assert access.session_who(token="another-token", cookie_header=header) is None
    # And one made 13 hours ago has expired
    old = access.session_make(
        token=TOKEN, name="Ana", given=TOKEN, now=time.time() - 13 * 3600
    )
    assert (
        access.session_who(token=TOKEN, cookie_header=f"{access.COOKIE}={old}".encode())
        is None
    )
    # And a changed name breaks the signature
    forged = "RXZl" + value[value.index(".") :]
    assert (
        access.session_who(
            token=TOKEN, cookie_header=f"{access.COOKIE}={forged}".encode()
        )
        is None
    )


@pytest.mark.parametrize(
    ("name", "given", "says"),
    [("Ana", "wrong", "admin token"), ("", TOKEN, "name"), ("<b>", TOKEN, "name")],
    ids=["wrong-token", "no-name", "markup-name"],
)
def test_a_login_is_refused_for_a_wrong_token_or_a_name_the_log_cannot_show(
    name: str, given: str, says: str
) -> None:
    with pytest.raises(access.LoginRefused, match=says):
        access.session_make(token=TOKEN, name=name, given=given)


def test_each_button_is_the_terminals_command() -> None:
    assert faults.set_argv({"name": "warehouse.down", "value": True, "ttl": 60}) == [
        "manage.py", "faults", "set", "warehouse.down=true", "--ttl", "60",
    ]  # fmt: skip
    assert faults.clear_argv({}) == ["manage.py", "faults", "clear"]
    assert faults.kill_argv({"process": "relay"})[-2:] == ["kill", "relay"]
    assert sale.sale_argv(
        {"mode": "strangler", "units": 12, "after": 6.5, "traces": False}
    ) == [
        "-m", "loadtest", "run", "--no-start", "--mode", "strangler",
        "--units", "12", "--after", "6.5", "--no-traces",
    ]  # fmt: skip
    assert sale.sale_argv({}) == ["-m", "loadtest", "run", "--no-start"]


def test_the_slowest_panel_reads_the_report_its_sale_named_else_the_newest(
    tmp_path: Path,
) -> None:
    settings = control_settings(
        {"EDGE_CONTROL_REPORTS_DIR": str(tmp_path)},
        orders_url="http://127.0.0.1:1",
        mode_key="edge:parts:mode",
    )
    # Given two reports with their slowest requests listed, and one without
    for name, trace_id in [
        ("sale-20261206-010000", "a" * 32),
        ("sale-20261206-020000", "b" * 32),
    ]:
        listed = tmp_path / name / "traces" / "slowest-requests.json"
        listed.parent.mkdir(parents=True)
        listed.write_text(json.dumps({"legacy": [{"trace_id": trace_id, "ms": 5.0}]}))
    (tmp_path / "sale-20261206-030000").mkdir()
    # When the sale's first line names the oldest one (as `sale run` says it)
    line = f"sale run: report in {tmp_path / 'sale-20261206-010000'}"
    sale_state = {"state": "done", "report": slowest.report_named(line)}
    # Then the panel lists that sale's requests, with no view drawn for them
    doc = slowest.slowest_list(settings, sale_state)
    assert doc["report"] == "sale-20261206-010000"
    assert [(r["trace_id"], r["view"]) for r in doc["requests"]] == [("a" * 32, None)]
    # And with no sale of its own, the newest report that lists any
    assert slowest.slowest_list(settings, None)["report"] == "sale-20261206-020000"
    # And a report named outside the reports directory is never read
    outside = {"report": str(tmp_path.parent / "elsewhere")}
    assert slowest.slowest_list(settings, outside)["report"] == "sale-20261206-020000"
