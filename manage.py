#!/usr/bin/env python
"""One Django project, several services: DJANGO_SETTINGS_MODULE picks the service.

    DJANGO_SETTINGS_MODULE=shop.settings python manage.py migrate
    DJANGO_SETTINGS_MODULE=fulfillment_queue.warehouse.settings python manage.py migrate
"""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
