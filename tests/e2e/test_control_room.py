"""The control room in a real Chromium (Playwright), on the real stack: a presenter
signs in, flips the edge, runs a miniature sale and watches the charts move; a
visitor without the token is refused; a fault is set and cleared from the page."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.edge import ADMIN_TOKEN, Process, admin_url, edge_process
from tests.support.orders_stack import OrdersStack, orders_stack

pytestmark = [pytest.mark.browser, pytest.mark.stack]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "reports" / "screenshots"
CONTROL = "/_edge/control/"
SALE_SECONDS = 240_000  # ms: a miniature sale, reset to reconcile, on a busy machine


@pytest.fixture(scope="module")
def room() -> Iterator[tuple[OrdersStack, Process]]:
    """Every process of the order path; the edge in front, with the stack's settings,
    so the sale and the fault commands it runs reach the same stack."""
    faults = {"FAULTS_KEY_PREFIX": f"faults-{uuid.uuid4().hex[:8]}"}
    with orders_stack("control", warehouse_handling_ms=20, env=faults) as running:
        running.fulfillment_worker(FULFILLMENT_CONCURRENCY="2")
        stack_env: dict[str, Any] = {
            **running.env,
            "FULFILLMENT_CONCURRENCY": "2",
            "OTEL_TRACES_EXPORTER": "none",
            "EDGE_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        with edge_process(running.shop.url, running.orders.url, **stack_env) as edge:
            yield running, edge


def signed_in_page(browser: Browser, edge: Process) -> Page:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    answer = page.goto(admin_url(edge) + CONTROL)
    assert answer is not None
    assert answer.status == 401
    page.get_by_label("Your name").fill("Ana")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text("Ana")
    expect(page.locator("#feed-state")).to_have_text("live")
    return page


def peak(page: Page, selector: str) -> float:
    return float(page.locator(selector).get_attribute("data-peak") or 0)


def test_a_presenter_flips_the_edge_and_watches_a_miniature_sale_move_the_charts(
    browser: Browser, room: tuple[OrdersStack, Process]
) -> None:
    _, edge = room
    # Given a presenter signed in on the control room
    page = signed_in_page(browser, edge)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    # When they flip the edge to canary 30 %, then to strangler
    page.locator("#canary-percent").fill("30")
    page.locator("[data-mode=canary]").click()
    expect(page.locator("#mode-current")).to_have_text("canary 30%")
    expect(page.locator("#mode-command")).to_have_text(
        "python manage.py edge mode canary --percent 30"
    )
    page.locator("[data-mode=strangler]").click()
    # Then the page and the edge itself say strangler
    expect(page.locator("#mode-current")).to_have_text("strangler")
    assert httpx.get(edge.url + "/_edge/healthz").json()["mode"] == "strangler"

    # When they start a miniature sale in strangler mode
    page.locator("[data-preset=miniature]").click()
    page.locator("select[name=mode]").select_option("strangler")
    expect(page.locator("#sale-command")).to_contain_text(
        "python -m loadtest run --no-start --mode strangler --units 12"
    )
    page.locator("#sale-start").click()
    expect(page.locator("#sale-state")).to_have_text("running")

    # Then the charts move: Muskie orders accepted and fulfilled, the watched page's
    # latency, the warehouse's new-path orders in flight against its capacity
    moved = ("#readout-accepted", "#readout-fulfilled", "#readout-p99")
    deadline = time.monotonic() + SALE_SECONDS / 1000
    while not all(peak(page, readout) > 0 for readout in moved):
        assert time.monotonic() < deadline, [peak(page, r) for r in moved]
        page.wait_for_timeout(500)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / "control-room.png")
    assert peak(page, "#readout-capacity") == 8
    for chart in ("tourney", "orders", "queue", "warehouse"):
        expect(page.locator(f"#chart-{chart} canvas")).to_have_count(1)
    # And the sale ends as its terminal would: every order accounted for
    expect(page.locator("#sale-state")).to_have_text(
        "done (exit 0)", timeout=SALE_SECONDS
    )
    expect(page.locator("#sale-lines")).to_contain_text(
        "none lost, duplicated or oversold"
    )
    # And the page broke no rule of its own (CSP, scripts)
    assert errors == []
    page.close()


def test_a_visitor_without_the_token_is_refused_in_the_browser(
    browser: Browser, room: tuple[OrdersStack, Process]
) -> None:
    _, edge = room
    page = browser.new_page()
    # Given the login form; when a wrong token is given
    page.goto(admin_url(edge) + CONTROL)
    page.get_by_label("Your name").fill("Eve")
    page.get_by_label("Admin token").fill("guess")
    page.get_by_role("button", name="Sign in").click()
    # Then the form says so, and no cookie opens the page
    expect(page.locator(".refusal")).to_have_text("that is not the edge's admin token")
    # And an action posted by the page's own script is a 401, the mode unchanged
    before = httpx.get(edge.url + "/_edge/healthz").json()["mode"]
    status = page.evaluate(
        """() => fetch('/_edge/control/mode', {method: 'POST',
             headers: {'Content-Type': 'application/json'},
             body: JSON.stringify({mode: 'legacy'})}).then(r => r.status)"""
    )
    assert status == 401
    assert httpx.get(edge.url + "/_edge/healthz").json()["mode"] == before
    page.close()


def test_a_presenter_sets_and_clears_a_fault_from_the_page(
    browser: Browser, room: tuple[OrdersStack, Process]
) -> None:
    _, edge = room
    if not (ROOT / "common/management/commands/faults.py").exists():
        pytest.fail("needs the faults (issue 17: common/faults.py, manage.py faults)")
    page = signed_in_page(browser, edge)
    row = page.locator("[data-fault='warehouse.latency_ms']")
    # Given the command the row stands for
    expect(row.locator("code")).to_have_text(
        "python manage.py faults set warehouse.latency_ms=400 --ttl 120"
    )
    # When the presenter sets the fault
    row.get_by_role("button", name="Set").click()
    # Then the page shows it in force, as `faults list` would
    expect(page.locator("#faults-in-force")).to_contain_text(
        "warehouse.latency_ms=400", timeout=30_000
    )
    expect(row).to_have_class("in-force")
    # When they clear it, then it is gone
    row.get_by_role("button", name="Clear").click()
    expect(page.locator("#faults-in-force")).to_have_text("none", timeout=30_000)
    # And the log names who did both
    # (a line written once the command has exited, just after its effect shows)
    said = "control room: Ana from 127.0.0.1: faults (`python manage.py faults "
    deadline = time.monotonic() + 30
    while said + "clear warehouse.latency_ms`)" not in edge.log():
        assert time.monotonic() < deadline, edge.log()[-3000:]
        time.sleep(0.2)
    assert said + "set warehouse.latency_ms=400 --ttl 120`)" in edge.log()
    page.close()
