"""WSGI entry point of the legacy shop: `gunicorn shop.wsgi`.

Traced (common/tracing/): instrumented at import, tracing set up in each worker
at its first request, which is right with and without gunicorn's --preload.
"""

import os

from common.tracing.django import traced_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")

application = traced_wsgi_application("shop")
