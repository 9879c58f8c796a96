"""Every service's migrations match its models and have one leaf per app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICE_SETTINGS = [
    "shop.settings",
    "orders_api.settings",
    "fulfillment_queue.settings",
    "warehouse.settings",
]


@pytest.mark.parametrize("settings_module", SERVICE_SETTINGS)
def test_migrations_are_complete_and_unconflicted(settings_module: str) -> None:
    # when makemigrations checks the service's apps (it needs no database)
    result = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": settings_module},
        capture_output=True,
        text=True,
    )
    # then nothing is missing and no app has two leaf migrations
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout
