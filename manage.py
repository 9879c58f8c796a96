#!/usr/bin/env python
"""One Django project, several services: DJANGO_SETTINGS_MODULE picks the service.

    DJANGO_SETTINGS_MODULE=shop.settings python manage.py migrate
    DJANGO_SETTINGS_MODULE=warehouse.settings python manage.py migrate
    DJANGO_SETTINGS_MODULE=orders_api.settings python manage.py migrate

Commands that belong to one service pick that service's settings by themselves (see
COMMAND_SERVICES), so `python manage.py seed_catalogue` just works; an explicit
DJANGO_SETTINGS_MODULE always wins. A command run by hand beside `make demo` takes the
stack's secrets from `.data/secrets.env` when they are not in the environment (the
services themselves get theirs from the launcher or compose, never from the file).
"""

import os
import sys

# The service whose settings a command needs when DJANGO_SETTINGS_MODULE is not set.
COMMAND_SERVICES: dict[str, str] = {
    "seed_catalogue": "shop.settings",
    "traces": "observability.settings",
    "edge": "edge_router.settings",
    "sale": "orders_api.settings",
    "outbox_relay": "orders_api.settings",
    "events": "orders_api.settings",
    "idempotency_sweep": "orders_api.settings",
    "fulfillment": "fulfillment_queue.settings",
    "faults": "common.command_settings",
}
DEFAULT_SETTINGS = "shop.settings"


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    os.environ.setdefault(
        "DJANGO_SETTINGS_MODULE", COMMAND_SERVICES.get(command, DEFAULT_SETTINGS)
    )
    from common.stack_secrets import SECRET_NAMES, secret_lookup

    for name in SECRET_NAMES:
        if name not in os.environ and (value := secret_lookup(name)):
            os.environ[name] = value
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
