"""`manage.py traces compare | find | sale` in process, against the running stack
(no edge: compare then places the legacy purchase straight at the shop)."""

from __future__ import annotations

import io
import json
import re
import uuid

import httpx
import pytest
from django.core.management import CommandError, call_command

from tests.support.orders_stack import wait_until
from tests.support.processes import free_port


@pytest.fixture
def stack_settings(settings, shop, traces_dir, tmp_path):
    """The command pointed at the test stack; no edge and no orders service run."""
    settings.TRACES_DIR = str(traces_dir)
    settings.JAEGER_QUERY_URL = ""
    settings.SHOP_URL = shop.url
    settings.EDGE_URL = f"http://127.0.0.1:{free_port()}"
    settings.ORDERS_URL = f"http://127.0.0.1:{free_port()}"
    settings.REPORTS_DIR = tmp_path / "reports"
    return settings


def _traces(*args: str) -> str:
    out = io.StringIO()
    call_command("traces", *args, stdout=out)
    return out.getvalue()


def test_compare_legacy_places_a_purchase_and_writes_the_report(
    stack_settings, tmp_path
):
    # when the legacy path is compared with nothing but the shop running
    output = _traces("compare", "--path", "legacy", "--report-dir", str(tmp_path / "r"))
    # then it placed an order through the shop and waited for its whole trace
    trace_id = re.search(
        r"legacy: 303 /orders/[A-Z0-9-]+/ \(trace ([0-9a-f]{32})\)", output
    )
    assert trace_id, output
    # and printed the waterfall and the segments, then wrote the report
    assert "shop: POST /shop/rods/" in output
    assert "warehouse: POST /fulfilments/" in output
    assert "warehouse wait" in output
    report = (tmp_path / "r" / "index.html").read_text()
    assert trace_id[1] in report
    assert f"report: {tmp_path / 'r' / 'index.html'}" in output


def test_compare_without_the_edge_says_so_and_still_reports_the_legacy_path(
    stack_settings,
):
    # when both paths are asked for and neither the edge nor orders service runs
    with pytest.raises(CommandError) as failure:
        _traces("compare")
    # then it fails, naming what is missing and how to go on
    message = str(failure.value)
    assert "strangler purchase not placed" in message
    assert stack_settings.EDGE_URL in message
    assert stack_settings.ORDERS_URL in message
    assert "traces compare --path legacy" in message
    # and the legacy trace it could place is in a report that says the same
    reports = list(stack_settings.REPORTS_DIR.glob("traces-*/index.html"))
    assert len(reports) == 1
    assert "strangler purchase not placed" in reports[0].read_text()


def test_compare_with_nothing_running_fails_clearly(settings, traces_dir, tmp_path):
    settings.TRACES_DIR = str(traces_dir)
    settings.SHOP_URL = f"http://127.0.0.1:{free_port()}"
    settings.EDGE_URL = f"http://127.0.0.1:{free_port()}"
    settings.REPORTS_DIR = tmp_path
    with pytest.raises(
        CommandError, match=r"nothing answers on the edge .* nor on the shop"
    ):
        _traces("compare", "--path", "legacy")
    assert not list(tmp_path.iterdir())


def test_compare_two_trace_ids_from_the_store(stack_settings, legacy, shop, store):
    from tests.observability.conftest import legacy_placed

    other = legacy_placed(shop, store)
    output = _traces(
        "compare", legacy.trace.trace_id, other.trace.trace_id,
        "--report-dir", str(stack_settings.REPORTS_DIR / "ab"),
    )  # fmt: skip
    assert legacy.trace.trace_id in output
    assert other.trace.trace_id in output
    assert (stack_settings.REPORTS_DIR / "ab" / "index.html").exists()


def test_compare_an_unknown_trace_id_fails(stack_settings):
    with pytest.raises(CommandError, match="no span of trace 0123"):
        _traces("compare", "0123456789abcdef0123456789abcdef")


def test_find_is_the_uri_filter(stack_settings, legacy):
    # when looking for legacy Muskie traces of the last ten minutes
    found = _traces(
        "find", "--path", "/shop/rods/muskie-casting-rod/", "--mode", "legacy",
        "--last", "10m",
    )  # fmt: skip
    # then the purchase is listed with its mode and status
    row = next(line for line in found.splitlines() if legacy.trace.trace_id in line)
    assert "legacy" in row
    assert "303" in row
    # and not under another path or mode
    assert legacy.trace.trace_id not in _traces("find", "--path", "/basket/")
    assert legacy.trace.trace_id not in _traces(
        "find", "--path", "/shop/rods/muskie-casting-rod/", "--mode", "strangler"
    )


def test_find_refuses_a_window_it_cannot_read(stack_settings):
    with pytest.raises(CommandError, match="not a window like"):
        _traces("find", "--last", "ten minutes")


def test_sale_writes_per_segment_percentiles_per_path(
    stack_settings, stack, legacy, strangler, tmp_path
):
    # given a purchase on each path in the window, and one the orders API refused
    refused = httpx.post(
        stack.orders.url + "/api/orders/",
        json={"sku": "ROD-MUSKIE", "quantity": 0, "email": "traces@example.com"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=10,
    )
    assert refused.status_code == 400
    wait_until(
        lambda: refused.headers["X-Trace-Id"] in _traces("find", "--last", "10m"),
        timeout=10,
        what="the refused request's trace",
    )
    # when the sale's load test asks for the window's percentiles (the purchases
    # went straight to the services: no edge span expected)
    output = _traces(
        "sale", "--report", str(tmp_path / "sale"), "--last", "10m", "--no-edge"
    )
    # then each path has p50 <= p95 <= p99 for its segments and both latencies
    data = json.loads((tmp_path / "sale" / "trace-segments.json").read_text())
    assert data["paths"] == ["/shop/rods/muskie-casting-rod/", "/api/orders/"]
    per_path = data["traces_per_path"]
    assert set(per_path) == set(data["percentiles_ms"]) == {"legacy", "strangler"}
    assert data["traces"] == per_path["legacy"] + per_path["strangler"]
    expected = {
        "legacy": ("view", "db", "redis", "warehouse"),
        "strangler": ("view", "db", "redis", "outbox", "queue", "worker", "warehouse"),
    }
    for path, segments in expected.items():
        stats = data["percentiles_ms"][path]
        assert stats["warehouse"]["count"] == per_path[path]
        for name in ("customer-facing latency", "time until fulfilled", *segments):
            assert 0 < stats[name]["p50_ms"] <= stats[name]["p95_ms"], (path, name)
            assert stats[name]["p95_ms"] <= stats[name]["p99_ms"], (path, name)
    # the strangler's customer waited less than it took to fulfil
    strangler_stats = data["percentiles_ms"]["strangler"]
    assert (
        strangler_stats["customer-facing latency"]["p50_ms"]
        < strangler_stats["time until fulfilled"]["p50_ms"]
    )
    # and the refusal is counted apart, not in the percentiles
    assert data["refused_per_path"]["strangler"]["400"] >= 1
    assert "legacy: per-segment latency" in output
    assert "strangler: per-segment latency" in output
    # and every answered purchase has a complete trace
    assert data["completeness"]["complete"] == data["traces"]
    assert "incomplete: 0" in output
