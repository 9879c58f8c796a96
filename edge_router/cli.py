"""What `python manage.py edge ...` does, without Django: the command only parses.

edge mode legacy|strangler|canary [--percent N]
edge mode                           (print the mode in force)
edge routes [--json]
edge export nginx|envoy [--profile strangler] [--listen 127.0.0.1:8000] [--output FILE]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import redis

from edge_router.config import config_from_env
from edge_router.export import ExportError, nginx_config
from edge_router.export_envoy import envoy_config
from edge_router.modes import ModeError, mode_read, mode_validate, mode_write
from edge_router.routes import PROFILES, RouteTable, load_table

EXPORTS = ("nginx", "envoy")
_LISTEN = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:(\d{1,5})$")


class CliError(Exception):
    """A command that cannot do what was asked; the message says why."""


def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)


def mode_show(env: Mapping[str, str] | None = None) -> str:
    config = config_from_env(env, serving=False)
    try:
        mode = mode_read(_redis(config.redis_url), config.mode_key, config.default_mode)
    except (redis.RedisError, OSError) as error:
        raise CliError(f"cannot reach Redis at {config.redis_url}: {error}") from None
    where = (
        "default, nothing stored" if mode.version == 0 else f"version {mode.version}"
    )
    return f"mode: {mode.describe()} ({where})"


def mode_set(
    name: str, percent: int | None, env: Mapping[str, str] | None = None
) -> str:
    config = config_from_env(env, serving=False)
    try:
        mode = mode_validate(name, percent)
    except ModeError as error:
        raise CliError(str(error)) from None
    try:
        stored = mode_write(_redis(config.redis_url), config.mode_key, mode)
    except (redis.RedisError, OSError) as error:
        raise CliError(f"cannot reach Redis at {config.redis_url}: {error}") from None
    return (
        f"mode: {stored.describe()} (version {stored.version}); "
        f"every edge worker follows within a second"
    )


def _table(env: Mapping[str, str] | None) -> RouteTable:
    config = config_from_env(env, serving=False)
    return load_table(config.routes_file, env=config.env)


def routes_show(*, as_json: bool = False, env: Mapping[str, str] | None = None) -> str:
    config = config_from_env(env, serving=False)
    table = load_table(config.routes_file, env=config.env)
    try:
        mode = mode_read(_redis(config.redis_url), config.mode_key, config.default_mode)
        mode_text = mode.describe()
    except (redis.RedisError, OSError):
        mode, mode_text = None, f"unknown (Redis unreachable at {config.redis_url})"
    if as_json:
        return json.dumps(
            {"mode": mode.as_dict() if mode else None, **table.as_dict()}, indent=2
        )
    lines = [f"route table: {table.source}", f"mode in force: {mode_text}", "origins:"]
    lines += [f"  {o.name:<8} {o.url}  ({o.env})" for o in table.origins.values()]
    for name, profile in table.profiles.items():
        lines.append(f"profile {name}:")
        lines.append(
            f"  {'#':>2}  {'behaviour':<16} {'path':<38} {'methods':<10} "
            f"{'origin':<7} limits"
        )
        for index, b in enumerate(profile.behaviours, 1):
            methods = ",".join(sorted(b.methods)) if b.methods else "any"
            limits = f"timeout {b.timeout:g}s, body {b.max_body}"
            if b.rate:
                limits += f", rate {b.rate.text} burst {b.rate.burst}"
            if b.cache_control:
                limits += f", cache-control {b.cache_control!r}"
            limits += f", trace {b.trace:g}"
            if b.denied:
                limits = "deny: 404, no origin"
            lines.append(
                f"  {index:>2}  {b.name:<16} {b.pattern:<38} {methods:<10} "
                f"{b.origin.name:<7} {limits}"
            )
    lines.append(
        "canary N: N % of visitors (by the hash of their edge_visitor id) on "
        "strangler, the rest on legacy"
    )
    return "\n".join(lines)


def export(
    kind: str,
    *,
    profile: str = "strangler",
    listen: str = "127.0.0.1:8000",
    output: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The config text; written to `output` when given (then a one-line summary)."""
    if kind not in EXPORTS:
        raise CliError(f"export to {' or '.join(EXPORTS)}, not {kind!r}")
    if profile not in PROFILES:
        raise CliError(
            f"profile must be {' or '.join(PROFILES)}; canary mode is the Python "
            f"edge's own and is not exported (got {profile!r})"
        )
    match = _LISTEN.match(listen)
    if not match or not 0 < int(match.group(1)) < 65536:
        raise CliError(
            f"--listen must be HOST:PORT with a port 1-65535, not {listen!r}"
        )
    table = _table(env)
    try:
        render = nginx_config if kind == "nginx" else envoy_config
        text = render(table, profile, listen=listen)
    except ExportError as error:
        raise CliError(f"cannot export to {kind}: {error}") from None
    if output is None:
        return text
    try:
        output.write_text(text)
    except OSError as error:
        raise CliError(f"cannot write {output}: {error.strerror}") from None
    return f"wrote {output} ({kind}, profile {profile}, listening on {listen})"
