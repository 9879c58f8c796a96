"""With DEBUG off, no service starts on a secret anyone can know.

Each service's settings are loaded in a process of their own, as `manage.py` or
gunicorn would load them, with one secret missing, empty or set to the value the demo
once published; the edge is started from its Procfile line. Each refuses, naming the
secret.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from common.harness.procfile import ROOT
from common.stack_secrets import PUBLIC_VALUES, SECRET_NAMES, secret_generate
from tests.support.edge import edge_command
from tests.support.processes import free_port

# What each service needs: the Django key to sign with, the internal token to check.
SERVICE_SECRETS = {
    "shop.settings": ("DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN"),
    "orders_api.settings": ("DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN"),
    "warehouse.settings": ("DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN"),
    "fulfillment_queue.settings": ("DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN"),
}
CASES = {
    "missing": (None, "is not set"),
    "empty": ("", "is empty"),
    "public": ("old", "is the demo's old public value"),
}
SETUP = "import django; django.setup()"


def _env(secret: str, case: str, **extra: str) -> dict[str, str]:
    """Every secret set to a private value but `secret`, which is as `case` says."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env |= {name: secret_generate() for name in SECRET_NAMES}
    env |= {"DJANGO_DEBUG": "0", **extra}
    value = CASES[case][0]
    if value is None:
        del env[secret]
    else:
        env[secret] = next(iter(PUBLIC_VALUES[secret])) if value == "old" else value
    return env


def _load_settings(settings: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", SETUP],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": settings},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("settings", "secret"),
    [(s, name) for s, names in SERVICE_SECRETS.items() for name in names],
)
def test_a_service_refuses_to_start_on_a_missing_empty_or_public_secret(
    settings: str, secret: str, case: str
) -> None:
    # Given every secret private but one, missing, empty or the old public value
    env = _env(secret, case)
    # When the service's settings load, DEBUG off
    result = _load_settings(settings, env)
    # Then it refuses, naming the secret and what is wrong with it
    assert result.returncode != 0, result.stdout
    assert f"{secret} {CASES[case][1]}" in result.stderr, result.stderr[-2000:]


@pytest.mark.parametrize("settings", SERVICE_SECRETS)
def test_a_service_starts_on_private_secrets_and_on_old_ones_with_debug_on(
    settings: str,
) -> None:
    # Given private secrets, then the old public ones with DEBUG on
    private = _env("DJANGO_SECRET_KEY", "empty") | {"DJANGO_SECRET_KEY": "k" * 40}
    public = {
        **private,
        "DJANGO_DEBUG": "1",
        **{name: next(iter(values)) for name, values in PUBLIC_VALUES.items()},
    }
    # When the service's settings load, then they do
    for env in (private, public):
        result = _load_settings(settings, env)
        assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("case", CASES)
def test_the_edge_refuses_to_start_without_a_private_admin_token(case: str) -> None:
    # Given the edge's admin token missing, empty or the old public one, DEBUG off
    port = free_port()
    env = _env("EDGE_ADMIN_TOKEN", case, EDGE_PORT=str(port), EDGE_WORKERS="1")
    env |= {"OTEL_TRACES_EXPORTER": "none"}
    # When the Procfile's edge line starts
    result = subprocess.run(
        edge_command(port, workers=1),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it stops at start-up, naming the token
    assert result.returncode != 0, result.stdout
    assert f"EDGE_ADMIN_TOKEN {CASES[case][1]}" in result.stderr, result.stderr[-2000:]
