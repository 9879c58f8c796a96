"""The control room's settings, read once from the edge's environment (docs:
guides/control-room.md). Every one has a default that fits `make demo`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.env import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WATCHED_PATH = "/shop/rods/tourney-casting-rod/"


@dataclass(frozen=True)
class ControlSettings:
    orders_url: str
    warehouse_url: str
    internal_token: str
    fulfillment_queue: str
    faults_prefix: str
    # Prefix of the control room's own keys (the sale it runs, its progress).
    keys: str
    push_seconds: float
    window_seconds: float
    python: str
    root: Path
    # Where sale reports are (the slowest requests' trace views), and Jaeger's UI.
    reports_dir: Path
    jaeger_ui_url: str


def watched_path(env: Mapping[str, str]) -> str:
    """EDGE_WATCHED_PATH: the page whose p50 and p99 the edge keeps apart."""
    path = env.get("EDGE_WATCHED_PATH", "").strip() or DEFAULT_WATCHED_PATH
    if not path.startswith("/"):
        raise ConfigurationError(f"EDGE_WATCHED_PATH={path!r} must start with /")
    return path


def _seconds(env: Mapping[str, str], name: str, default: float, low: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a number") from None
    if not low <= value <= 60:
        raise ConfigurationError(f"{name}={raw} must be between {low} and 60")
    return value


def control_settings(
    env: Mapping[str, str], *, orders_url: str, mode_key: str
) -> ControlSettings:
    return ControlSettings(
        orders_url=orders_url.rstrip("/"),
        warehouse_url=(env.get("WAREHOUSE_URL", "") or "http://127.0.0.1:8003").rstrip(
            "/"
        ),
        internal_token=env.get("INTERNAL_API_TOKEN", ""),
        fulfillment_queue=env.get("FULFILLMENT_QUEUE", "") or "fulfillment",
        faults_prefix=env.get("FAULTS_KEY_PREFIX", "") or "faults",
        keys=f"{mode_key}:control",
        push_seconds=_seconds(env, "EDGE_CONTROL_PUSH_SECONDS", 1.0, 0.5),
        window_seconds=_seconds(env, "EDGE_CONTROL_WINDOW_SECONDS", 5.0, 1.0),
        python=sys.executable,
        root=ROOT,
        reports_dir=ROOT / (env.get("EDGE_CONTROL_REPORTS_DIR", "") or "reports"),
        jaeger_ui_url=env.get("JAEGER_UI_URL", "").strip().rstrip("/"),
    )
