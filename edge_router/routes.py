"""The route table: origins, and per profile an ordered list of behaviours.

Loaded from TOML (`routes.toml` beside this module, or `EDGE_ROUTES_FILE`) and validated
as a whole: `RouteTableError` lists every problem found, not just the first. What a
table is made of (`RouteTable`, `Profile`, `Behaviour`, `Origin`, `Rate`) is in
edge_router/route_model.py, and importable from here.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from edge_router.listener import listener_parse, websockets_parse
from edge_router.patterns import compile_pattern, pattern_parse
from edge_router.private_paths import private_paths_problem
from edge_router.route_model import (
    HTTP_METHODS,
    KINDS,
    NO_ORIGIN,
    NO_ORIGIN_NAME,
    PROFILES,
    Behaviour,
    Origin,
    Profile,
    Rate,
    RouteTable,
)
from edge_router.sites import static_spec
from edge_router.trace_ratios import (
    BUILT_IN_TRACE,
    TRACE_RATIO_ENV,
    behaviour_trace,
    env_ratio,
    trace_ratio,
)

# The model's names are this module's too: callers import the table from one place.
__all__ = [
    "BUILT_IN_LIMITS",
    "DEFAULT_ROUTES_FILE",
    "HTTP_METHODS",
    "KINDS",
    "NO_ORIGIN",
    "NO_ORIGIN_NAME",
    "PROFILES",
    "Behaviour",
    "Origin",
    "Profile",
    "Rate",
    "RouteTable",
    "RouteTableError",
    "load_table",
    "parse_rate",
    "parse_table",
]

DEFAULT_ROUTES_FILE = Path(__file__).resolve().parent / "routes.toml"
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,39}$")
_RATE = re.compile(r"^([1-9][0-9]{0,5})/(s|m)$")
_BEHAVIOUR_KEYS = {
    "name", "path", "methods", "origin", "timeout", "max_body", "rate", "burst",
    "kind", "cache_control", "trace",
}  # fmt: skip
_CACHE_CONTROL = re.compile(r"^[A-Za-z0-9 ,=\-]{1,200}$")
_LIMIT_KEYS = {"timeout", "max_body"}
_DEFAULT_KEYS = _LIMIT_KEYS | {"trace"}
# When [defaults] does not say: 30 s to the origin's headers, 1 MiB of request body.
BUILT_IN_LIMITS: dict[str, Any] = {"timeout": 30.0, "max_body": 1024 * 1024}


class RouteTableError(ValueError):
    """The route table cannot be used; `problems` lists every reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid route table {source}:\n{lines}")


def parse_rate(text: str, burst: int | None) -> Rate:
    match = _RATE.match(text)
    if not match:
        raise ValueError(f"rate {text!r} is not of the form N/s or N/m")
    count, unit = int(match.group(1)), match.group(2)
    per_second = count if unit == "s" else count / 60
    return Rate(text, per_second, burst if burst is not None else max(1, count))


def _origin(
    name: str, spec: Any, env: Mapping[str, str], problems: list[str]
) -> Origin:
    if isinstance(spec, dict) and "dir" in spec:
        root, variable, cache, headers = static_spec(name, spec, env, problems)
        return Origin(name, str(root), variable, "", 0, root, cache, headers)
    if not isinstance(spec, dict) or not isinstance(spec.get("default"), str):
        problems.append(
            f"origin {name!r}: needs a table with env and default URL, or a dir"
        )
        return Origin(name, "", "", "", 0)
    variable = spec.get("env", "")
    if not isinstance(variable, str) or not re.match(r"^[A-Z][A-Z0-9_]*$", variable):
        problems.append(f"origin {name!r}: env must be an environment variable name")
        variable = ""
    url = (env.get(variable) if variable else None) or spec["default"]
    parts = urlsplit(url)
    where = f"{variable}={url}" if variable and env.get(variable) else url
    try:
        port = parts.port or 80
    except ValueError:
        port = 0
    if parts.scheme != "http" or not parts.hostname or not port:
        problems.append(f"origin {name!r}: {where} is not an http://host[:port] URL")
    elif parts.path not in ("", "/") or parts.query or parts.fragment:
        problems.append(f"origin {name!r}: {where} must not carry a path or query")
    return Origin(name, url.rstrip("/"), variable, parts.hostname or "", port)


def _number(value: Any, kind: type, where: str, problems: list[str]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where} must be a number, not {value!r}")
        return None
    if kind is int and not isinstance(value, int):
        problems.append(f"{where} must be a whole number of bytes, not {value!r}")
        return None
    if value <= 0:
        problems.append(f"{where} must be above zero, not {value!r}")
        return None
    return kind(value)


def _methods(
    spec: dict[str, Any], where: str, problems: list[str]
) -> frozenset[str] | None:
    """The methods a behaviour takes (GET brings HEAD), or None for all of them."""
    if "methods" not in spec:
        return None
    raw = spec["methods"]
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) for m in raw):
        problems.append(f"{where}: methods must be a non-empty list of strings")
        return None
    unknown = sorted({m for m in raw if m.upper() not in HTTP_METHODS})
    if unknown:
        problems.append(f"{where}: unknown methods {unknown}")
    methods = frozenset(m.upper() for m in raw)
    if "GET" in methods:
        methods |= {"HEAD"}
    return methods


def _rate(spec: dict[str, Any], where: str, problems: list[str]) -> Rate | None:
    burst = spec.get("burst")
    if burst is not None and (
        isinstance(burst, bool) or not isinstance(burst, int) or burst < 1
    ):
        problems.append(f"{where}: burst must be a whole number above zero")
        burst = None
    if "rate" in spec:
        try:
            return parse_rate(str(spec["rate"]), burst)
        except ValueError as error:
            problems.append(f"{where}: {error}")
    elif burst is not None:
        problems.append(f"{where}: burst without a rate")
    return None


def _behaviour(
    profile: str,
    index: int,
    spec: Any,
    origins: dict[str, Origin],
    defaults: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
) -> Behaviour | None:
    where = f"profiles.{profile}[{index}]"
    if not isinstance(spec, dict):
        problems.append(f"{where}: a behaviour must be a table")
        return None
    name = spec.get("name")
    if isinstance(name, str) and _NAME.match(name):
        where = f"{where} ({name})"
    else:
        problems.append(f"{where}: name must be lower-case letters, digits and -")
        name = f"#{index}"
    for key in sorted(set(spec) - _BEHAVIOUR_KEYS):
        problems.append(f"{where}: unknown key {key!r}")
    pattern = pattern_parse(spec, where, problems)
    kind = spec.get("kind", "proxy")
    if kind not in KINDS:
        problems.append(f"{where}: kind must be one of {', '.join(KINDS)}")
    origin = _behaviour_origin(spec, kind, origins, where, problems)
    cache_control = spec.get("cache_control")
    if cache_control is not None and (
        not isinstance(cache_control, str) or not _CACHE_CONTROL.match(cache_control)
    ):
        problems.append(f"{where}: cache_control {cache_control!r} is not a value")
        cache_control = None
    methods = _methods(spec, where, problems)
    limits = {
        key: spec.get(key, defaults.get(key, BUILT_IN_LIMITS[key]))
        for key in _LIMIT_KEYS
    }
    timeout = _number(limits["timeout"], float, f"{where}: timeout", problems)
    max_body = _number(limits["max_body"], int, f"{where}: max_body", problems)
    rate = _rate(spec, where, problems)
    inherited = defaults.get("trace", BUILT_IN_TRACE)
    trace = behaviour_trace(
        spec.get("trace", inherited), inherited, env, f"{where}: trace", problems
    )
    if (
        pattern is None
        or origin is None
        or timeout is None
        or max_body is None
        or trace is None
    ):
        return None
    prefix, exact, regex = compile_pattern(pattern)
    return Behaviour(
        name, pattern, origin, methods, timeout, max_body, rate, trace,
        prefix, exact, regex, kind=kind, cache_control=cache_control,
    )  # fmt: skip


def _behaviour_origin(
    spec: dict[str, Any],
    kind: Any,
    origins: dict[str, Origin],
    where: str,
    problems: list[str],
) -> Origin | None:
    """The behaviour's origin; a `deny` one names none and gets NO_ORIGIN."""
    origin_name = spec.get("origin")
    if kind == "deny":
        if origin_name is not None:
            problems.append(f"{where}: a deny behaviour names no origin")
        return NO_ORIGIN
    origin = origins.get(origin_name) if isinstance(origin_name, str) else None
    if origin is None:
        known = ", ".join(sorted(origins)) or "none"
        problems.append(f"{where}: origin {origin_name!r} is not one of: {known}")
    return origin


def _origins(
    raw_origins: Any, env: Mapping[str, str], problems: list[str]
) -> dict[str, Origin]:
    if not isinstance(raw_origins, dict) or not raw_origins:
        problems.append("[origins] must name at least one origin")
        return {}
    origins: dict[str, Origin] = {}
    for name, spec in raw_origins.items():
        if not _NAME.match(name):
            problems.append(f"origin name {name!r}: use lower-case letters")
        origins[name] = _origin(name, spec, env, problems)
    return origins


def _defaults(
    defaults: Any, env: Mapping[str, str], problems: list[str]
) -> dict[str, Any]:
    """[defaults], with the environment's sampling ratio over the table's."""
    if not isinstance(defaults, dict):
        problems.append("[defaults] must be a table")
        defaults = {}
    for key in sorted(set(defaults) - _DEFAULT_KEYS):
        problems.append(f"[defaults]: unknown key {key!r}")
    if "trace" in defaults:
        ratio = trace_ratio(defaults["trace"], "[defaults]: trace", problems)
        # Said once: the behaviours that would inherit it get the built-in one.
        defaults = {**defaults, "trace": BUILT_IN_TRACE if ratio is None else ratio}
    override = env_ratio(env, TRACE_RATIO_ENV, problems)
    if override is not None:
        defaults = {**defaults, "trace": override}
    return defaults


def _profile(
    profile: str,
    specs: list[Any],
    origins: dict[str, Origin],
    defaults: dict[str, Any],
    env: Mapping[str, str],
    problems: list[str],
) -> Profile | None:
    """The profile, or None when one of its behaviours cannot be used."""
    behaviours = [
        _behaviour(profile, i, spec, origins, defaults, env, problems)
        for i, spec in enumerate(specs)
    ]
    names = [s.get("name") for s in specs if isinstance(s, dict)]
    for name in sorted({n for n in names if isinstance(n, str) and names.count(n) > 1}):
        problems.append(f"profile {profile!r}: name {name!r} twice")
    last = behaviours[-1]
    if last is not None and (last.pattern != "/*" or last.methods is not None):
        problems.append(
            f"profile {profile!r}: the last behaviour must be the default, "
            f'path "/*" with no methods (it is {last.name!r})'
        )
    for i, behaviour in enumerate(behaviours[:-1]):
        if (
            behaviour is not None
            and behaviour.pattern == "/*"
            and not behaviour.methods
        ):
            problems.append(
                f"profile {profile!r}: {behaviour.name!r} matches everything, "
                f"so the {len(behaviours) - 1 - i} behaviour(s) after it never do"
            )
    if not all(b is not None for b in behaviours):
        return None
    built = Profile(profile, tuple(b for b in behaviours if b))
    problem = private_paths_problem(built, HTTP_METHODS)
    if problem:
        problems.append(problem)
    return built


def parse_table(data: Any, *, source: str, env: Mapping[str, str]) -> RouteTable:
    problems: list[str] = []
    if not isinstance(data, dict):
        raise RouteTableError(source, ["the table must be a TOML document"])
    known = {"origins", "defaults", "profiles", "listener", "websockets"}
    for key in sorted(set(data) - known):
        problems.append(f"unknown top-level key {key!r}")
    listener = listener_parse(data.get("listener"), problems)
    websockets = websockets_parse(data.get("websockets"), problems)
    origins = _origins(data.get("origins"), env, problems)
    defaults = _defaults(data.get("defaults", {}), env, problems)
    raw_profiles = data.get("profiles")
    if not isinstance(raw_profiles, dict):
        raw_profiles = {}
    for name in sorted(set(raw_profiles) - set(PROFILES)):
        problems.append(f"unknown profile {name!r} (profiles: {', '.join(PROFILES)})")
    profiles: dict[str, Profile] = {}
    for name in PROFILES:
        specs = raw_profiles.get(name)
        if not isinstance(specs, list) or not specs:
            problems.append(f"profile {name!r} has no behaviours")
            continue
        profile = _profile(name, specs, origins, defaults, env, problems)
        if profile is not None:
            profiles[name] = profile
    if problems:
        raise RouteTableError(source, problems)
    return RouteTable(source, origins, profiles, listener, websockets)


def load_table(path: Path | None = None, *, env: Mapping[str, str]) -> RouteTable:
    """Read and validate the route table; `RouteTableError` if it cannot be used."""
    path = path or DEFAULT_ROUTES_FILE
    try:
        data = tomllib.loads(path.read_text())
    except OSError as error:
        raise RouteTableError(str(path), [f"cannot read: {error.strerror}"]) from None
    except tomllib.TOMLDecodeError as error:
        raise RouteTableError(str(path), [f"not valid TOML: {error}"]) from None
    return parse_table(data, source=str(path), env=env)
