"""WSGI entry point of the warehouse: `gunicorn warehouse.wsgi`.

Run it as ONE process with many threads (`--workers 1 --threads 32`, see Procfile):
the capacity limit is counted inside the process (see admission.py). Traced like the
shop (common/tracing/): tracing is set up in the worker, at its first request.
"""

import os

from common.tracing.django import traced_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "warehouse.settings")

application = traced_wsgi_application("warehouse")
