"""The HTML report renders in a real Chromium: waterfalls, service maps, tables.

Two real legacy purchases side by side (the strangler path joins after the merge).
The screenshot goes to reports/screenshots/traces.png for the README.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from observability.report import Compared, report_write
from tests.observability.conftest import legacy_placed

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The flags of tests/e2e/test_browser.py: no background calls to Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make browser` installs it")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.mark.browser
def test_the_comparison_report_renders_in_chromium(
    browser, legacy, shop, store, tmp_path
):
    # given two purchases' traces, compared in a report
    second = legacy_placed(shop, store)
    items = [
        Compared("legacy, 1st", legacy.trace),
        Compared("legacy, 2nd", second.trace),
    ]
    report = report_write(tmp_path / "traces", items, source=store.describe())
    # when Chromium opens it (a file: nothing else is fetched)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    # then both waterfalls are there, one row per span, on one time axis
    waterfalls = page.locator("svg.waterfall")
    expect(waterfalls).to_have_count(2)
    for index, item in enumerate(items):
        waterfall = waterfalls.nth(index)
        expect(waterfall).to_have_attribute("data-trace", item.trace.trace_id)
        expect(waterfall.locator("g.span")).to_have_count(len(item.trace.spans))
    assert waterfalls.nth(0).get_attribute("width") == waterfalls.nth(1).get_attribute(
        "width"
    )
    # and a service map per path: client, shop, warehouse, two databases, Redis
    maps = page.locator("svg.service-map")
    expect(maps).to_have_count(2)
    expect(maps.nth(0).locator("g.node")).to_have_count(6)
    expect(maps.nth(0).locator("g.edge").first).to_contain_text("1× ·")
    # and the tables: latency both ways, segments and services with differences
    expect(page.locator("#latency tbody tr")).to_have_count(3)
    expect(page.locator("#latency")).to_contain_text("customer-facing latency")
    expect(page.locator("#latency")).to_contain_text("time until fulfilled")
    expect(page.locator("#segments")).to_contain_text("warehouse wait")
    expect(page.locator("#segments thead")).to_contain_text("legacy, 2nd − legacy, 1st")
    expect(page.locator("#services tbody tr")).to_have_count(2)
    expect(page.locator(".customer-latency")).to_have_count(2)
    assert requests == [report.as_uri()]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "traces.png", full_page=True)
    page.close()
