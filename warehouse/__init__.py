"""The warehouse: the downstream system that must never be flooded (port 8003).

A small JSON HTTP service with its own database (`fulfillment`). It picks and packs at
most `WAREHOUSE_CAPACITY` orders at once and refuses the rest with 503 + Retry-After.
"""
