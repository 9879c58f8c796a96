"""Settings of the stack-wide commands that belong to no service (`manage.py faults`).

No database, no secret: the command talks to Redis (and, for one fault, to the
orders service's PostgreSQL by its own URL), so an operator can run it beside
`make demo` with nothing but REDIS_URL (docs/guides/faults.md).
"""

from __future__ import annotations

from common.stack_secrets import secret_generate

# Nothing here signs anything (no sessions, no forms): a key nobody knows, per process.
SECRET_KEY = secret_generate()
DEBUG = False
ALLOWED_HOSTS: list[str] = []
INSTALLED_APPS = ["common"]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TIME_ZONE = "UTC"
