"""Settings of the `traces` command: no database, only where spans and stack are."""

from __future__ import annotations

from common.env import env_float, env_str
from common.settings import *  # noqa: F403
from common.stack_secrets import secret_generate, secret_lookup

# The command signs nothing (no sessions, no forms): a key nobody knows, per process.
SECRET_KEY = secret_generate()

INSTALLED_APPS = ["observability"]
DATABASES: dict[str, dict[str, object]] = {}

# The command prints its own progress; httpx's request log would only repeat it.
LOGGING = {**LOGGING, "loggers": {**LOGGING["loggers"], "httpx": {"level": "WARNING"}}}

# Where the spans are: the local span store, or Jaeger's query API when set.
TRACES_DIR = env_str("TRACES_DIR", "") or str(BASE_DIR / ".data" / "traces")
JAEGER_QUERY_URL = env_str("JAEGER_QUERY_URL", "")
# Where the processes' logs are (`traces show`): `make demo` keeps them there.
LOGS_DIR = env_str("LOGS_DIR", "") or str(BASE_DIR / ".data" / "logs")

# Where `traces compare` places its purchases, and the edge's admin token (it
# switches the edge's mode for each purchase, then puts it back): the variable, else
# the one `make demo` generated (.data/secrets.env).
EDGE_URL = env_str("EDGE_URL", "http://127.0.0.1:8000")
# The mode is switched on the edge's admin listener (loopback, EDGE_ADMIN_PORT).
EDGE_ADMIN_URL = env_str(
    "EDGE_ADMIN_URL", f"http://127.0.0.1:{env_str('EDGE_ADMIN_PORT', '8010')}"
)
EDGE_ADMIN_TOKEN = secret_lookup("EDGE_ADMIN_TOKEN")
SHOP_URL = env_str("SHOP_URL", f"http://127.0.0.1:{SHOP_PORT}")
ORDERS_URL = env_str("ORDERS_URL", f"http://127.0.0.1:{ORDERS_PORT}")
REPORTS_DIR = BASE_DIR / "reports"
# How long to wait for a purchase's spans to be flushed to the store.
TRACES_WAIT_SECONDS = env_float("TRACES_WAIT_SECONDS", 30.0)
