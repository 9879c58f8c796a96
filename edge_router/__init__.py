"""The edge router: one public entry point (port 8000) in front of the shop and orders.

An ASGI app (uvicorn) that imports no Django: the route table (`routes.toml`), path
normalisation, the proxy, admission limits, admin endpoints and metrics. Only the thin
`management/`, `apps.py` and `settings.py` exist for `python manage.py edge ...`.
"""
