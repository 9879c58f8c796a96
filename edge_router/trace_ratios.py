"""A route table's trace ratios: the share of a behaviour's requests the edge traces,
a number or `{ env = "NAME", default = ratio }` (see docs/guides/tracing.md)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
# The share of requests the edge traces when neither the behaviour nor [defaults]
# says; TRACES_SAMPLE_RATIO in the environment replaces the table's default.
BUILT_IN_TRACE = 1.0
TRACE_RATIO_ENV = "TRACES_SAMPLE_RATIO"


def trace_ratio(value: Any, where: str, problems: list[str]) -> float | None:
    """A sampling ratio: a number from 0 (never traced) to 1 (always)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        problems.append(f"{where} must be a number from 0 to 1, not {value!r}")
        return None
    if not 0.0 <= value <= 1.0:
        problems.append(f"{where} must be from 0 to 1, not {value!r}")
        return None
    return float(value)


def env_ratio(
    env: Mapping[str, str], variable: str, problems: list[str]
) -> float | None:
    """The ratio an environment variable sets, or None when it is unset (or wrong:
    then a problem says so)."""
    text = env.get(variable, "").strip()
    if not text:
        return None
    try:
        value: Any = float(text)
    except ValueError:
        value = text
    return trace_ratio(value, variable, problems)


def behaviour_trace(
    spec: Any, inherited: Any, env: Mapping[str, str], where: str, problems: list[str]
) -> float | None:
    """A behaviour's `trace`: a number, or `{ env = "NAME" }` (optionally with a
    `default`): the variable's ratio when set, else the default, else [defaults]'s."""
    if not isinstance(spec, dict):
        return trace_ratio(spec, where, problems)
    variable = spec.get("env")
    unknown = sorted(set(spec) - {"env", "default"})
    if not isinstance(variable, str) or not _ENV_NAME.match(variable) or unknown:
        problems.append(
            f'{where} must be a number or {{ env = "NAME", default = ratio }}, '
            f"not {spec!r}"
        )
        return None
    from_env = env_ratio(env, variable, problems)
    if from_env is not None:
        return from_env
    return trace_ratio(spec.get("default", inherited), where, problems)
