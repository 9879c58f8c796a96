"""A stand-in for the outbox relay, until the orders path is merged.

    python -m tests.observability.relay_standin CARRIER_JSON WAREHOUSE_URL REF [--link]

Does what the relay will do with common/tracing.py's API: picks up the trace context
stored beside a message (`trace_carrier()` in the accept request), continues it in
`span_from_carrier` (a child, or a link with --link), and does the queued work: here,
asks the real warehouse to fulfil an order. Its spans are real, from a real process.
"""

from __future__ import annotations

import json
import sys

import httpx
from opentelemetry import trace

from common.tracing import instrument_process, span_from_carrier


def main(argv: list[str]) -> int:
    carrier, warehouse_url, order_ref = json.loads(argv[0]), argv[1], argv[2]
    instrument_process("outbox-relay")
    with span_from_carrier("outbox publish", carrier, link="--link" in argv):
        answer = httpx.post(
            warehouse_url + "/fulfilments/",
            json={
                "order_ref": order_ref,
                "lines": [{"sku": "ROD-MUSKIE", "quantity": 1}],
            },
            timeout=10,
        )
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    return 0 if answer.status_code == 201 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
