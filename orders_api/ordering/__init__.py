"""Placing an order: the one entry point (intake), the durable write (services), the
order's life cycle, idempotency, and the API and pages that take and show orders."""
