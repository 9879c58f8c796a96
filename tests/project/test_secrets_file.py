"""`make demo`'s secrets: generated once into the data folder (0600), reused after,
given to every process the launcher starts, and read by the commands run by hand."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from common.harness.procfile import ROOT
from common.stack_secrets import SECRET_NAMES, secrets_read
from loadtest.config import Endpoints

PRINT_TOKENS = "import os; print(os.environ['INTERNAL_API_TOKEN'])"


def _devstack(*args: str, data_dir: Path, **extra: str) -> str:
    """`python -m common.devstack ARGS` on a data folder of its own, no secret set."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES}
    env |= {"DEVSTACK_DATA_DIR": str(data_dir), **extra}
    env.pop("DEVSTACK_EMBEDDED", None)
    result = subprocess.run(
        [sys.executable, "-m", "common.devstack", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_the_first_run_writes_the_secrets_owner_only_and_later_runs_reuse_them(
    tmp_path: Path,
) -> None:
    # Given a data folder without secrets, when the launcher runs for the first time
    output = _devstack("env", data_dir=tmp_path)
    # Then it wrote every secret, random, to secrets.env, readable by its owner only
    path = tmp_path / "secrets.env"
    assert f"SECRETS_FILE={path}" in output.splitlines()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = secrets_read(path)
    assert set(first) == set(SECRET_NAMES)
    assert len(set(first.values())) == 3
    assert all(len(value) >= 40 for value in first.values())
    # And a second run keeps them
    _devstack("env", data_dir=tmp_path)
    assert secrets_read(path) == first


def test_the_launcher_gives_its_processes_the_files_secrets_unless_one_is_set(
    tmp_path: Path,
) -> None:
    # When the launcher runs a command, it has the file's token
    printed = _devstack("run", sys.executable, "-c", PRINT_TOKENS, data_dir=tmp_path)
    token = secrets_read(tmp_path / "secrets.env")["INTERNAL_API_TOKEN"]
    assert printed.splitlines()[-1] == token
    # And a token set in the environment wins over the file's
    printed = _devstack(
        "run",
        sys.executable,
        "-c",
        PRINT_TOKENS,
        data_dir=tmp_path,
        INTERNAL_API_TOKEN="from-the-environment",
    )
    assert printed.splitlines()[-1] == "from-the-environment"


def test_the_commands_run_by_hand_read_the_tokens_from_the_file(
    tmp_path: Path,
) -> None:
    # Given the stack's secrets file, and no token in the environment
    _devstack("env", data_dir=tmp_path)
    secrets = secrets_read(tmp_path / "secrets.env")
    env = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES}
    env |= {"DEVSTACK_DATA_DIR": str(tmp_path)}
    # Then the sale run calls the internal APIs with the file's internal token
    endpoints = Endpoints.from_env(env)
    assert endpoints.internal_token == secrets["INTERNAL_API_TOKEN"]
    # And `traces compare` switches the edge's mode with the file's admin token
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.EDGE_ADMIN_TOKEN)",
        ],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "observability.settings"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == secrets["EDGE_ADMIN_TOKEN"]


def test_the_sale_run_makes_the_file_when_it_may_start_the_stack_itself(
    tmp_path: Path,
) -> None:
    # Given no secrets file yet (the run will start `make demo`'s launcher)
    env = {"DEVSTACK_DATA_DIR": str(tmp_path)}
    # When the sale run reads where the stack is
    endpoints = Endpoints.from_env(env)
    # Then it made the file the launcher will reuse, with that token
    secrets = secrets_read(tmp_path / "secrets.env")
    assert endpoints.internal_token == secrets["INTERNAL_API_TOKEN"]


def _manage_check(data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_NAMES}
    env |= {"DEVSTACK_DATA_DIR": str(data_dir), "DJANGO_DEBUG": "0"}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the command picks its service's own
    return subprocess.run(
        [sys.executable, "manage.py", "sale", "--help"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_command_run_by_hand_takes_the_stacks_secrets_from_the_file(
    tmp_path: Path,
) -> None:
    # Given no secret in the environment and no secrets file, a command of the orders
    # service is refused, naming what is missing
    refused = _manage_check(tmp_path)
    assert refused.returncode != 0
    assert "INTERNAL_API_TOKEN is not set" in refused.stderr
    # When `make demo`'s launcher has written the stack's secrets
    _devstack("env", data_dir=tmp_path)
    # Then the same command runs with them
    ran = _manage_check(tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert "sale" in ran.stdout
