"""Logs carry the trace: a real purchase through the real edge, each path, leaves its
trace id (the one the response's X-Trace-Id names) and its spans' ids in the log
file of every process it went through; `traces show` prints the trace's waterfall
and those lines.

Every process of the stack writes its output to `<traces dir>/logs/<process>.log`
(tests/support/tracing.py), as `make demo` does under .data/logs/.
"""

from __future__ import annotations

import io
import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.core.management import CommandError, call_command

from observability.model import Trace
from observability.purchase import MUSKIE_PATH
from observability.store import FileSpanStore, trace_wait
from tests.support.edge import set_mode
from tests.support.orders_stack import wait_until

pytestmark = pytest.mark.stack

LINE_IDS = re.compile(r"trace_id=([0-9a-f]{32}|-) span_id=([0-9a-f]{16}|-)")


@dataclass(frozen=True)
class Bought:
    trace_id: str
    number: str
    trace: Trace


def _whole(trace: Trace, services: set[str]) -> bool:
    served = {s.service for s in trace.spans}
    return services <= served and not trace.missing_parents()


def _buy_legacy_through_edge(edge_url: str) -> tuple[str, str]:
    """The shop's buy-now through the edge, no trace context of ours: the answer's
    X-Trace-Id and the order's number."""
    with httpx.Client(base_url=edge_url, timeout=30) as client:
        page = client.get(MUSKIE_PATH)
        assert page.headers["X-Edge-Origin"] == "shop"
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert csrf, page.text[:500]
        answer = client.post(
            MUSKIE_PATH + "buy/",
            data={
                "csrfmiddlewaretoken": csrf[1],
                "quantity": "1",
                "email": "logs@example.com",
            },
            headers={"Referer": edge_url + MUSKIE_PATH},
        )
    assert answer.status_code == 303, answer.text[:500]
    number = re.search(r"/orders/([A-Z0-9-]+)/", answer.headers["location"])
    assert number, answer.headers["location"]
    return answer.headers["X-Trace-Id"], number[1]


@pytest.fixture(scope="module")
def legacy_bought(edge, store: FileSpanStore) -> Bought:
    set_mode(edge, "legacy")
    trace_id, number = _buy_legacy_through_edge(edge.url)
    trace = trace_wait(
        store,
        trace_id,
        complete=lambda t: _whole(t, {"edge", "shop", "warehouse"}),
    )
    return Bought(trace_id, number, trace)


@pytest.fixture(scope="module")
def strangler_bought(edge, stack, store: FileSpanStore) -> Bought:
    set_mode(edge, "strangler")
    answer = httpx.post(
        edge.url + "/api/orders/",
        json={"sku": "ROD-MUSKIE", "quantity": 1, "email": "logs@example.com"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["X-Edge-Origin"] == "orders"
    status_url = stack.orders.url + answer.json()["status_url"]
    wait_until(
        lambda: httpx.get(status_url, timeout=10).json()["status"] == "fulfilled",
        timeout=60,
        what="the order fulfilled",
    )
    trace_id = answer.headers["X-Trace-Id"]
    path = {"edge", "orders-api", "outbox-relay", "fulfillment-worker", "warehouse"}
    trace = trace_wait(
        store,
        trace_id,
        complete=lambda t: (
            _whole(t, path | {"orders-worker"}) and t.completion is not None
        ),
    )
    return Bought(trace_id, answer.json()["number"], trace)


def _lines(logs: Path, process: str, needle: str) -> list[str]:
    path = logs / f"{process}.log"
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines() if needle in line]


def _line_with(logs: Path, process: str, trace_id: str, text: str) -> str:
    """The first line of the process's log naming the trace and saying `text`,
    waited for (the edge writes its access log in batches)."""
    found: list[str] = []

    def seen() -> bool:
        found[:] = [line for line in _lines(logs, process, trace_id) if text in line]
        return bool(found)

    wait_until(seen, timeout=10, what=f"{process}.log: {text!r} in trace {trace_id}")
    return found[0]


def _span_ids(trace: Trace, service: str) -> set[str]:
    return {s.span_id for s in trace.spans if s.service == service}


def _ids(line: str) -> tuple[str, str]:
    match = LINE_IDS.search(line)
    assert match, line
    return match[1], match[2]


def test_a_legacy_buy_leaves_its_trace_in_the_edge_shop_and_warehouse_logs(
    legacy_bought, traces_dir
):
    logs = traces_dir / "logs"
    bought = legacy_bought
    # then the shop's own line about the order names the trace and a shop span
    placed = _line_with(logs, "shop", bought.trace_id, f"order {bought.number} placed")
    assert _ids(placed) == (bought.trace_id, _ids(placed)[1])
    assert _ids(placed)[1] in _span_ids(bought.trace, "shop")
    # and so does gunicorn's access line of the buy, with the shop's server span
    access = _line_with(
        logs, "shop", bought.trace_id, f'"POST {MUSKIE_PATH}buy/ HTTP/1.1" 303'
    )
    assert "gunicorn.access" in access
    servers = {
        s.span_id
        for s in bought.trace.spans
        if s.service == "shop" and s.kind == "server"
    }
    assert _ids(access)[1] in servers
    # and the warehouse's lines of the fulfilment the shop asked for
    packed = _line_with(
        logs, "warehouse", bought.trace_id, f"fulfilment of {bought.number} packed"
    )
    assert _ids(packed)[1] in _span_ids(bought.trace, "warehouse")
    _line_with(logs, "warehouse", bought.trace_id, '"POST /fulfilments/ HTTP/1.1" 201')
    # and the edge's access line names the trace and its own server span
    edge_line = json.loads(_line_with(logs, "edge", bought.trace_id, '"POST"'))
    assert edge_line["trace_id"] == bought.trace_id
    assert edge_line["span_id"] == bought.trace.root.span_id
    assert bought.trace.root.service == "edge"


def test_an_orders_accept_leaves_its_trace_in_every_process_of_the_new_path(
    strangler_bought, traces_dir
):
    logs = traces_dir / "logs"
    bought = strangler_bought
    # then each process's line about the order names the trace and a span of its own
    expected = {
        "orders": ("orders-api", f"order {bought.number} accepted"),
        "relay": ("outbox-relay", "published orders.order-accepted event"),
        "fulfillment-worker": (
            "fulfillment-worker",
            f"order {bought.number} packed by the warehouse",
        ),
        "warehouse": ("warehouse", f"fulfilment of {bought.number} packed"),
        "orders-worker": (
            "orders-worker",
            "event fulfillment.order-fulfilled: applied",
        ),
    }
    for process, (service, text) in expected.items():
        line = _line_with(logs, process, bought.trace_id, text)
        trace_id, span_id = _ids(line)
        assert trace_id == bought.trace_id, line
        assert span_id in _span_ids(bought.trace, service), (process, line)
    # and the edge's access line of the accept
    edge_line = json.loads(_line_with(logs, "edge", bought.trace_id, "/api/orders/"))
    assert edge_line["span_id"] == bought.trace.root.span_id


def test_a_line_logged_outside_any_trace_says_so(traces_dir, legacy_bought):
    # given the stack has answered health probes (never traced) while it started
    logs = traces_dir / "logs"
    probes = _lines(logs, "warehouse", "GET /healthz")
    # then their access lines carry no ids, rather than another request's
    assert probes
    assert all(_ids(line) == ("-", "-") for line in probes)


# --- traces show --------------------------------------------------------------------


@pytest.fixture
def show_settings(settings, traces_dir, monkeypatch):
    settings.TRACES_DIR = str(traces_dir)
    settings.JAEGER_QUERY_URL = ""
    settings.LOGS_DIR = str(traces_dir / "logs")
    # Wide enough that rich folds no line of the output.
    monkeypatch.setenv("COLUMNS", "400")
    return settings


def _show(trace_id: str) -> str:
    out = io.StringIO()
    call_command("traces", "show", trace_id, stdout=out)
    return out.getvalue()


def test_traces_show_prints_a_legacy_purchase_and_its_log_lines(
    show_settings, legacy_bought
):
    # when the legacy purchase's trace is shown
    output = _show(legacy_bought.trace_id)
    # then the waterfall has a row per span, service by service, nested
    assert f"trace {legacy_bought.trace_id} (legacy)" in output
    assert f"edge: POST {MUSKIE_PATH}buy/" in output
    assert f"  shop: POST {MUSKIE_PATH}buy/" in output
    assert "warehouse: POST /fulfilments/" in output
    assert re.search(r"\+0\.0 ms", output)
    # and then the log lines of the trace, from each process that wrote one
    head, _, lines = output.partition("log lines of the trace")
    assert "█" in head
    assert f"order {legacy_bought.number} placed" in lines
    assert f"fulfilment of {legacy_bought.number} packed" in lines
    for process in ("edge", "shop", "warehouse"):
        assert re.search(rf"\d\d:\d\d:\d\d\.\d{{3}} +{process} ", lines), process


def test_traces_show_prints_a_strangler_purchase_and_its_log_lines(
    show_settings, strangler_bought
):
    # when the strangler purchase's trace is shown
    output = _show(strangler_bought.trace_id)
    head, _, lines = output.partition("log lines of the trace")
    # then the waterfall has the spans of every process of the new path
    for service in ("edge", "orders-api", "outbox-relay", "fulfillment-worker",
                    "warehouse", "orders-worker"):  # fmt: skip
        assert f"{service}: " in head, service
    # and the lines of every one of them follow, in time order
    texts = [
        f"order {strangler_bought.number} accepted",
        "published orders.order-accepted event",
        f"order {strangler_bought.number} packed by the warehouse",
        "event fulfillment.order-fulfilled: applied",
    ]
    positions = [lines.find(text) for text in texts]
    assert all(p >= 0 for p in positions), (positions, lines)
    assert positions == sorted(positions)


def test_traces_show_of_an_unknown_trace_says_so(show_settings):
    with pytest.raises(CommandError, match=r"no span of trace 0{32}.*unknown trace"):
        _show("0" * 32)
    with pytest.raises(CommandError, match="is no trace id"):
        _show("not-a-trace")
