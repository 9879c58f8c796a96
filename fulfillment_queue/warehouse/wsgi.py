"""WSGI entry point of the warehouse: `gunicorn fulfillment_queue.warehouse.wsgi`.

Run it as ONE process with many threads (`--workers 1 --threads 32`, see Procfile):
the capacity limit is counted inside the process (see admission.py).
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fulfillment_queue.warehouse.settings")

application = get_wsgi_application()
