"""A stand-in for the fulfillment worker's Celery app, until the orders path is merged.

    celery -A tests.observability.celery_standin worker --pool solo -Q $STANDIN_QUEUE

Built the way the real worker module will be: the Celery app, then the one tracing
call, `instrument_celery_worker(...)`. Its task does what the fulfillment worker
does, over real Redis and real HTTP: asks the warehouse to fulfil an order.
"""

from __future__ import annotations

import os

import httpx
from celery import Celery

from common.tracing import instrument_celery_worker

app = Celery("standin", broker=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
app.conf.task_default_queue = os.environ.get("STANDIN_QUEUE", "standin")
app.conf.worker_hijack_root_logger = False
instrument_celery_worker("fulfillment-worker")


@app.task(name="standin.fulfil", acks_late=True)
def fulfil(order_ref: str, warehouse_url: str) -> int:
    answer = httpx.post(
        warehouse_url + "/fulfilments/",
        json={"order_ref": order_ref, "lines": [{"sku": "ROD-MUSKIE", "quantity": 1}]},
        timeout=10,
    )
    answer.raise_for_status()
    return int(answer.json()["id"])
