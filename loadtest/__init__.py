"""The load test of the Muskie rod's flash sale: Locust users, the sale's load shape,
and the runner behind `python -m loadtest run` / `make sale` (loadtest/cli.py).

It meets the stack the way a customer and an operator do: over HTTP (through the
edge, and the services' internal endpoints) and through `manage.py` commands in a
subprocess. It never imports a service's code (an import-linter contract says so).
"""
