"""The edge's settings, read once from the environment (docs: configuration)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.env import ConfigurationError
from common.stack_secrets import secret_generate, secrets_required
from edge_router.modes import Mode, ModeError, mode_cache_path, mode_parse_default
from edge_router.routes import DEFAULT_ROUTES_FILE


@dataclass(frozen=True)
class EdgeConfig:
    routes_file: Path
    redis_url: str
    mode_key: str
    default_mode: Mode
    admin_token: str
    admin_host: str
    admin_port: int
    poll_interval: float
    mode_cache: Path
    access_log: bool
    upstream_connections: int
    upstream_per_origin: int
    upstream_keepalive: float
    env: Mapping[str, str]


def _float(env: Mapping[str, str], name: str, default: float, low: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if value < low:
        raise ConfigurationError(f"{name}={raw} must be at least {low}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigurationError(f"{name}={raw!r} is not a TCP port")
    return int(raw)


def _admin_token(env: Mapping[str, str], *, serving: bool) -> str:
    """The admin API's token: required to serve (never a public one with DEBUG off,
    as the Django services); the CLI writes the mode to Redis itself and never
    answers the admin API, so without one it gets a token nobody knows."""
    if not serving and not env.get("EDGE_ADMIN_TOKEN", ""):
        return secret_generate()
    debug = env.get("DJANGO_DEBUG", "").strip().lower() in {"1", "true", "yes", "on"}
    (token,) = secrets_required("EDGE_ADMIN_TOKEN", debug=debug, env=env)
    return token


def config_from_env(
    env: Mapping[str, str] | None = None, *, serving: bool = True
) -> EdgeConfig:
    env = dict(os.environ if env is None else env)
    try:
        default_mode = mode_parse_default(env.get("EDGE_DEFAULT_MODE", "legacy"))
    except ModeError as error:
        raise ConfigurationError(str(error)) from None
    token = _admin_token(env, serving=serving)
    access_log = env.get("EDGE_ACCESS_LOG", "1").strip().lower()
    if access_log not in {"0", "1", "true", "false", "yes", "no", "on", "off"}:
        raise ConfigurationError(f"EDGE_ACCESS_LOG={access_log!r}: use 1 or 0")
    redis_url = env.get("REDIS_URL", "") or "redis://127.0.0.1:6379/0"
    mode_key = env.get("EDGE_MODE_KEY", "") or "edge:mode"
    return EdgeConfig(
        routes_file=Path(env.get("EDGE_ROUTES_FILE", "") or DEFAULT_ROUTES_FILE),
        redis_url=redis_url,
        mode_key=mode_key,
        # The last mode known, for a worker that starts while Redis is down.
        mode_cache=Path(
            env.get("EDGE_MODE_CACHE", "") or mode_cache_path(redis_url, mode_key)
        ),
        default_mode=default_mode,
        admin_token=token,
        # The admin listener (/_edge/* but the health check): loopback by default.
        admin_host=env.get("EDGE_ADMIN_HOST", "") or "127.0.0.1",
        admin_port=_port(env, "EDGE_ADMIN_PORT", 8010),
        poll_interval=_float(env, "EDGE_MODE_POLL_SECONDS", 0.5, 0.05),
        access_log=access_log in {"1", "true", "yes", "on"},
        # Per worker, websockets included: all origins together, and each origin.
        upstream_connections=int(_float(env, "EDGE_UPSTREAM_CONNECTIONS", 1024, 1)),
        upstream_per_origin=int(
            _float(env, "EDGE_UPSTREAM_CONNECTIONS_PER_ORIGIN", 512, 1)
        ),
        # Below the origins' own keep-alive (gunicorn: 2 s), so the edge never sends
        # on a connection the origin is closing.
        upstream_keepalive=_float(env, "EDGE_UPSTREAM_KEEPALIVE_SECONDS", 1.5, 0.1),
        env=env,
    )
