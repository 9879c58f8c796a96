"""`python manage.py traces compare`, as a user runs it, against the whole stack.

The edge, the shop, the warehouse, the orders service, the relay and both workers
run as real processes; the command (a process of its own) switches the edge to
legacy and buys, to strangler and buys, waits for the strangler order to be
fulfilled and for every span, prints both waterfalls, writes the report and puts
the edge's mode back. The report is then opened in a real Chromium; its screenshot
is the README's (reports/screenshots/traces.png → docs/img/traces.png).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import chromium
from tests.support.edge import ADMIN_TOKEN, admin_url, set_mode
from tests.support.processes import ROOT

pytestmark = [pytest.mark.stack, pytest.mark.browser]

SCREENSHOTS = ROOT / "reports" / "screenshots"
LEGACY = re.compile(r"legacy: 303 /orders/[A-Z0-9-]+/ \(trace ([0-9a-f]{32})\)")
STRANGLER = re.compile(
    r"strangler: 303 /shop/rods/muskie-casting-rod/orders/[0-9a-f-]+/\S* "
    r"\(trace ([0-9a-f]{32})\)"
)
WATERFALL_ROWS = (
    "shop: POST /shop/rods/",
    "orders-api: POST /shop/rods/",
    "fulfillment-worker: run/",
    "warehouse: POST /fulfilments/",
)
ORDER_PATH = ("orders-api", "outbox-relay", "fulfillment-worker", "orders-worker")


@pytest.fixture(scope="module")
def browser():
    with chromium() as running:
        yield running


def _compare(edge, stack, traces_dir: Path, report_dir: Path) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", "traces", "compare", "--report-dir",
         str(report_dir)],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "observability.settings",
            "EDGE_URL": edge.url,
            "EDGE_ADMIN_URL": admin_url(edge),
            "EDGE_ADMIN_TOKEN": ADMIN_TOKEN,
            "SHOP_URL": stack.shop.url,
            "ORDERS_URL": stack.orders.url,
            "TRACES_DIR": str(traces_dir),
            "JAEGER_QUERY_URL": "",
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_compare_buys_both_ways_through_the_edge_and_reports_them_side_by_side(
    edge, stack, traces_dir, tmp_path, browser
):
    # given the edge in a mode of its own: a canary of 10 %
    set_mode(edge, "canary", 10)
    # when `traces compare` runs against the stack
    output = _compare(edge, stack, traces_dir, tmp_path / "report")
    # then it placed a legacy and a strangler purchase, each in a trace of its own
    legacy, strangler = LEGACY.search(output), STRANGLER.search(output)
    assert legacy, output
    assert strangler, output
    ids = {"legacy": legacy[1], "strangler": strangler[1]}
    # and printed both waterfalls side by side, then the segments
    for label in WATERFALL_ROWS:
        assert label in output
    for label in ("warehouse wait", "queue wait (publish", "customer-facing latency"):
        assert label in output
    # and put the edge back as it found it
    assert "the edge is back in canary 10% mode" in output
    mode = httpx.get(
        admin_url(edge) + "/_edge/mode",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=5,
    ).json()
    assert (mode["mode"], mode["percent"]) == ("canary", 10)
    # and wrote the report, with both traces and every service of both paths
    report = tmp_path / "report" / "index.html"
    assert f"report: {report}" in output
    html = report.read_text()
    for trace_id in ids.values():
        assert trace_id in html
    for service in ("shop", "warehouse", *ORDER_PATH):
        assert f"data-service='{service}'" in html
    edge_traced = bool(list(traces_dir.glob("edge-*.jsonl")))
    assert ("data-service='edge'" in html) is edge_traced

    # when Chromium opens it (a file: nothing else is fetched)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    # then the two waterfalls share one time axis, legacy first
    waterfalls = page.locator("svg.waterfall")
    expect(waterfalls).to_have_count(2)
    expect(waterfalls.nth(0)).to_have_attribute("data-trace", ids["legacy"])
    expect(waterfalls.nth(1)).to_have_attribute("data-trace", ids["strangler"])
    assert waterfalls.nth(0).get_attribute("width") == waterfalls.nth(1).get_attribute(
        "width"
    )
    expect(
        waterfalls.nth(1).locator("g.span[data-service='warehouse']")
    ).not_to_have_count(0)
    # and a service map per path: the strangler's reaches every order-path process
    maps = page.locator("svg.service-map")
    expect(maps).to_have_count(2)

    def node(index: int, name: str):
        exact = re.compile(f"^{re.escape(name)}$")
        return maps.nth(index).locator("g.node title", has_text=exact)

    for service in (*ORDER_PATH, "warehouse"):
        expect(node(1, service)).to_have_count(1)
    expect(node(0, "shop")).to_have_count(1)
    expect(node(0, "orders-api")).to_have_count(0)
    # and the latencies both ways, and the segments with the difference between paths
    expect(page.locator("#latency")).to_contain_text("customer-facing latency")
    expect(page.locator("#latency")).to_contain_text("time until fulfilled")
    segments = page.locator("#segments")
    expect(segments.locator("thead")).to_contain_text("strangler − legacy")
    for label in (
        "shop / orders view",
        "DB (PostgreSQL)",
        "warehouse wait",
        "outbox (answer → relay publish)",
        "queue wait (publish → task start)",
        "worker",
    ):
        expect(segments).to_contain_text(label)
    if edge_traced:
        expect(segments.locator("tbody th", has_text="edge")).to_have_count(1)
    expect(page.locator(".customer-latency")).to_have_count(2)
    assert requests == [report.as_uri()]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "traces.png", full_page=True)
    page.close()
