"""Reading configuration from the environment.

Every setting of every service comes from here, with a documented default, so the
same code runs under `make demo`, `make test`, CI and docker compose.
"""

from __future__ import annotations

import os
from typing import Any

import dj_database_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigurationError(ValueError):
    """An environment variable holds a value the service cannot use."""


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not an integer") from None
    if minimum is not None and value < minimum:
        raise ConfigurationError(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a boolean (use 1/0, true/false)")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def service_database(db_name: str, *, conn_max_age: int = 60) -> dict[str, Any]:
    """The Django DATABASES entry of one service.

    `<DBNAME>_DATABASE_URL` (e.g. `SHOP_DATABASE_URL`) wins when set. Otherwise the
    server and credentials come from `DATABASE_URL` and the database name is the
    service's own (`shop`, `orders`, `fulfillment`): one server, one database each.
    """
    own = os.environ.get(f"{db_name.upper()}_DATABASE_URL")
    url = own or env_str("DATABASE_URL", DEFAULT_DATABASE_URL)
    config: dict[str, Any] = dict(dj_database_url.parse(url, conn_max_age=conn_max_age))
    if not own:
        config["NAME"] = db_name
    config.setdefault("OPTIONS", {})
    suffix = os.environ.get("TEST_DATABASE_SUFFIX", "")
    config["TEST"] = {"NAME": f"test_{config['NAME']}{suffix}"}
    return config
