"""The end of the control room's story, in a real Chromium: "open the slowest trace".

Real Tourney pages are fetched through a real edge, traced by the edge and the shop;
a sale report is made of them as a sale run makes it (its samples and phases, then
loadtest's own `slowest_explain`, which runs `manage.py traces slowest` over the
stored spans); the presenter's page lists them, slowest first, and one click opens
a request's waterfall, served by the edge's admin listener."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, expect

from loadtest.config import TOURNEY_PAGE
from loadtest.journal import Sample, samples_write
from loadtest.slowest import SLOWEST_COUNT, slowest_explain
from loadtest.stats import TOURNEY
from observability.store import FileSpanStore, trace_wait
from tests.support.edge import ADMIN_TOKEN, Process, admin_url, edge_process
from tests.support.processes import free_port
from tests.support.stack import shop_process
from tests.support.tracing import traced_env

pytestmark = [pytest.mark.browser, pytest.mark.stack]
CONTROL = "/_edge/control/"
REPORT = "sale-20261206-063000"
UNSTORED = "0" * 32


@pytest.fixture(scope="module")
def traced(tmp_path_factory, warehouse) -> Iterator[dict[str, Any]]:
    """A traced shop and a traced edge whose control room reads `reports`."""
    traces = tmp_path_factory.mktemp("traces")
    reports = tmp_path_factory.mktemp("reports")
    env: dict[str, Any] = {
        **traced_env(traces),
        "EDGE_CONTROL_REPORTS_DIR": str(reports),
    }
    db = f"e2e_slowest_{uuid.uuid4().hex[:6]}"
    with (
        shop_process(db, warehouse_url=warehouse.url, env=env) as shop,
        edge_process(
            shop.url,
            f"http://127.0.0.1:{free_port()}",
            **env,
        ) as edge,
    ):
        yield {"edge": edge, "traces": traces, "reports": reports}


def tourney_samples(edge: Process, store: FileSpanStore, count: int) -> list[Sample]:
    """`count` Tourney pages through the edge, timed as the load generator times
    them, each trace stored by the edge and the shop."""
    samples: list[Sample] = []
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        for _ in range(count):
            started = time.time()
            answer = client.get(TOURNEY_PAGE)
            assert answer.status_code == 200
            ms = answer.elapsed.total_seconds() * 1000
            samples.append(
                (started, TOURNEY, 200, ms, True, answer.headers["X-Trace-Id"])
            )
    for sample in samples:
        trace_wait(
            store,
            sample[5],
            complete=lambda t: {"edge", "shop"} <= set(t.services),
        )
    return samples


@pytest.fixture(scope="module")
def sale_report(traced: dict[str, Any]) -> dict[str, Any]:
    """A report as a sale run leaves it, its slowest requests explained."""
    store = FileSpanStore(traced["traces"])
    measured = tourney_samples(traced["edge"], store, SLOWEST_COUNT + 2)
    start, end = measured[0][0] - 1, measured[-1][0] + 1
    # One more in the sale, the slowest of all, whose trace nobody stored.
    unstored: Sample = (start + 0.5, TOURNEY, 200, 9_000.0, True, UNSTORED)
    report = traced["reports"] / REPORT
    (report / "legacy").mkdir(parents=True)
    samples_write(report / "legacy" / "samples.csv", sorted([*measured, unstored]))
    phases = [
        {"name": "baseline", "start": start - 10, "end": start},
        {"name": "ramp", "start": start, "end": start + 0.2},
        {"name": "fade", "start": end - 0.2, "end": end},
    ]
    (report / "legacy" / "phases.json").write_text(json.dumps({"phases": phases}))
    env = {**os.environ, "TRACES_DIR": str(traced["traces"]), "JAEGER_QUERY_URL": ""}
    explained = slowest_explain(report, ("legacy",), env=env)
    assert explained["ok"], explained
    return {"measured": measured}


def test_the_presenter_opens_the_slowest_trace_from_the_page(
    browser: Browser, traced: dict[str, Any], sale_report: dict[str, Any]
) -> None:
    edge = traced["edge"]
    slowest = sorted(sale_report["measured"], key=lambda s: s[3], reverse=True)
    # Given a presenter signed in on the control room, after a sale
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    page.goto(admin_url(edge) + CONTROL)
    page.get_by_label("Your name").fill("Ana")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#who")).to_have_text("Ana")
    # Then the panel names the report and lists its slowest Tourney requests,
    # slowest first: the one the store never had, without a link, then the others
    expect(page.locator("#slowest-report")).to_have_text(f"({REPORT})")
    rows = page.locator("#slowest tbody tr")
    expect(rows).to_have_count(SLOWEST_COUNT)
    expect(rows.nth(0)).to_contain_text(f"{UNSTORED} (not in the trace store)")
    expect(rows.nth(0).locator("a")).to_have_count(0)
    for index, sample in enumerate(slowest[: SLOWEST_COUNT - 1], start=1):
        row = rows.nth(index)
        expect(row).to_have_attribute("data-trace", sample[5])
        # as the page shows it: the report's ms (samples.csv keeps 0.01 ms), to 0.1
        # (rounding 4.854 straight to 0.1 gives 4.9; its stored 4.85 gives 4.8)
        stored = float(f"{sample[3]:.2f}")
        expect(row.locator("td").nth(1)).to_have_text(f"{stored:.1f}")
    # When they open the slowest stored one
    first = slowest[0][5]
    with page.expect_popup() as opened:
        rows.nth(1).get_by_role("link", name=first).click()
    view = opened.value
    # Then its waterfall: the trace, the edge's span and the shop's under it
    expect(view.locator("body")).to_contain_text(first)
    expect(view.locator("body")).to_contain_text("edge")
    expect(view.locator("body")).to_contain_text("shop")
    assert view.url == f"{admin_url(edge)}{CONTROL}traces/{REPORT}/{first}"
    view.close()
    page.close()


def test_the_trace_views_take_the_token_and_serve_nothing_but_a_view(
    traced: dict[str, Any], sale_report: dict[str, Any]
) -> None:
    edge = traced["edge"]
    base = admin_url(edge) + CONTROL
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    # Without the token: neither the list nor a view
    assert httpx.get(base + "slowest").status_code == 401
    # With it, the list as the page reads it, each stored trace with its view
    listed = httpx.get(base + "slowest", headers=auth).json()
    assert listed["report"] == REPORT
    viewed = [r for r in listed["requests"] if r["view"]]
    assert len(viewed) == SLOWEST_COUNT - 1, listed
    stored = viewed[0]["trace_id"]
    assert httpx.get(base + viewed[0]["view"]).status_code == 401
    answer = httpx.get(base + viewed[0]["view"], headers=auth)
    assert answer.status_code == 200
    assert stored in answer.text
    # a static page: its own inline style, no script at all
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src" not in policy
    # And nothing that is not a listed trace's view, whatever the path says
    for path in (
        f"traces/{REPORT}/{UNSTORED}",
        f"traces/{REPORT}/{stored}/../../../legacy/samples.csv",
        f"traces/..%2F{REPORT}/{stored}",
        f"traces/{REPORT}/{stored.upper()}",
        "traces/sale-none/" + stored,
    ):
        answer = httpx.get(base + path, headers=auth)
        assert answer.status_code == 404, (path, answer.text)
