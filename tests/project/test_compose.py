"""docker-compose.yml, the Procfile and the launcher agree with each other.

No Docker engine runs here, so the compose file is checked statically: against the
Compose specification, and against the Procfile that `make demo` runs.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML  # check-jsonschema's YAML parser; PyYAML is not installed

from common.stack_secrets import PUBLIC_VALUES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROCFILE = ROOT / "Procfile"
BACKING_SERVICES = {"postgres", "redis"}
# Infrastructure beside the stack (not in the Procfile): healthchecked, but the
# services do not wait for it to be healthy.
INFRA_SERVICES = {"jaeger"}
DJANGO_SERVICES = ("shop", "orders", "warehouse", "fulfillment-worker")
DJANGO_SECRETS = ("DJANGO_SECRET_KEY", "INTERNAL_API_TOKEN")
APP_IMAGE = "strangler-fishing-shop:dev"


def load_compose() -> dict[str, Any]:
    # The safe loader resolves anchors and `<<` merge keys as Compose does.
    return YAML(typ="safe").load(COMPOSE_FILE.read_text())


def load_procfile() -> dict[str, str]:
    processes: dict[str, str] = {}
    for line in PROCFILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        processes[name.strip()] = command.strip()
    return processes


def container_command(service: dict[str, Any]) -> str:
    """The shell command a service runs, with Compose's `$$` escapes undone."""
    command = service["command"]
    if isinstance(command, list):
        assert command[:2] == ["sh", "-c"], f"expected ['sh', '-c', ...]: {command}"
        command = command[2]
    command = command.replace("$$", "$")
    return re.sub(r"^exec\s+", "", " ".join(command.split()))


def gunicorn_target(command: str) -> str:
    words = shlex.split(command)
    assert words[0] in {"gunicorn", "uvicorn"}, (
        f"not a gunicorn/uvicorn command: {command}"
    )
    return next(word for word in words[1:] if not word.startswith("-"))


def one_shot_services(services: dict[str, Any]) -> set[str]:
    """Services others wait on to *finish*: set-up jobs, not servers."""
    return {
        dependency
        for service in services.values()
        for dependency, condition in (service.get("depends_on") or {}).items()
        if condition.get("condition") == "service_completed_successfully"
    }


def run_once_services(services: dict[str, Any]) -> set[str]:
    """Jobs that run once and are never restarted (set-up, opening the sale)."""
    return {name for name, s in services.items() if s.get("restart") == "no"}


def check_jsonschema_executable() -> str:
    beside_python = Path(sys.executable).parent / "check-jsonschema"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("check-jsonschema")
    assert found, "check-jsonschema is not installed (requirements/dev.in)"
    return found


def test_compose_file_follows_the_compose_specification() -> None:
    # Given the compose file, when check-jsonschema validates it
    result = subprocess.run(
        [
            check_jsonschema_executable(),
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it passes
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_procfile_process_is_a_compose_service_with_the_same_command() -> None:
    services = load_compose()["services"]
    processes = load_procfile()
    assert processes, "the Procfile lists no process"
    for name, procfile_command in processes.items():
        assert name in services, f"Procfile process {name!r} is not a compose service"
        compose_command = container_command(services[name])
        if procfile_command.startswith("gunicorn "):
            assert gunicorn_target(compose_command) == gunicorn_target(procfile_command)
        # The whole line, not just the module: options drift otherwise.
        assert compose_command == " ".join(procfile_command.split()), name


def test_long_running_services_have_healthchecks_and_wait_for_healthy_backing() -> None:
    services = load_compose()["services"]
    one_shots = one_shot_services(services)
    assert one_shots == {"setup"}
    assert run_once_services(services) == {"setup", "sale-open"}
    for name, service in services.items():
        if name in run_once_services(services):
            continue
        assert "healthcheck" in service, f"{name} has no healthcheck"
        if name in BACKING_SERVICES | INFRA_SERVICES:
            continue
        depends_on = service.get("depends_on") or {}
        for backing in sorted(BACKING_SERVICES):
            assert depends_on.get(backing) == {"condition": "service_healthy"}, (
                f"{name} must wait for {backing} to be healthy"
            )
        for job in one_shots:
            assert depends_on.get(job) == {
                "condition": "service_completed_successfully"
            }, f"{name} must wait for {job} to finish"


def test_setup_waits_for_healthy_backing_and_runs_once() -> None:
    setup = load_compose()["services"]["setup"]
    assert setup["restart"] == "no"
    assert setup["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }


def test_the_sale_opens_once_the_shop_and_the_orders_service_are_healthy() -> None:
    sale_open = load_compose()["services"]["sale-open"]
    assert sale_open["depends_on"]["shop"] == {"condition": "service_healthy"}
    assert sale_open["depends_on"]["orders"] == {"condition": "service_healthy"}
    assert "--unless-open" in container_command(sale_open)


def test_services_reach_each_other_by_name_and_publish_on_loopback_only() -> None:
    services = load_compose()["services"]
    shop_env = services["shop"]["environment"]
    allowed_hosts = shop_env["DJANGO_ALLOWED_HOSTS"].split(",")
    assert shop_env["WAREHOUSE_URL"] == "http://warehouse:8003"
    assert shop_env["SHOP_URL"] == "http://shop:8001"
    assert {"shop", "orders", "warehouse", "localhost"} <= set(allowed_hosts)
    assert "@postgres:5432/" in shop_env["DATABASE_URL"]
    assert shop_env["REDIS_URL"].startswith("redis://redis:6379/")
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name} publishes {mapping}"


def test_image_runs_as_a_non_root_user_and_defaults_to_the_shop() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=python:3\.11-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}$", dockerfile, re.MULTILINE)
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)
    assert "pip install --require-hashes -r requirements/runtime.txt" in dockerfile
    assert "grep" not in dockerfile
    assert "exec gunicorn shop.wsgi" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".data", "reports", ".git", "tests", "docs", ".env"} <= set(
        ignored
    )


def test_devstack_env_prints_the_backing_services_it_was_given(tmp_path: Path) -> None:
    # Given DATABASE_URL and REDIS_URL in the environment
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://app:secret@db.invalid:5432/postgres",
        "REDIS_URL": "redis://cache.invalid:6379/3",
        "DEVSTACK_DATA_DIR": str(tmp_path),
    }
    env.pop("DEVSTACK_EMBEDDED", None)
    # When the launcher resolves its environment
    result = subprocess.run(
        [sys.executable, "-m", "common.devstack", "env"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it uses them as given and starts no embedded server
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "DATABASE_URL=postgresql://app:secret@db.invalid:5432/postgres" in lines
    assert "REDIS_URL=redis://cache.invalid:6379/3" in lines
    assert "embedded" not in result.stdout


@pytest.mark.parametrize(
    ("service", "variable"),
    [
        *((name, var) for name in DJANGO_SERVICES for var in DJANGO_SECRETS),
        ("edge", "EDGE_ADMIN_TOKEN"),
    ],
)
def test_compose_refuses_to_start_without_each_secret(
    service: str, variable: str
) -> None:
    # Given the compose file, then each secret a service gets is `${VAR:?message}`:
    # compose stops with the message when it is unset or empty, there is no default
    value = load_compose()["services"][service]["environment"][variable]
    assert re.fullmatch(rf"\$\{{{variable}:\?[^}}]+\}}", value), value
    # And none of the values the demo once published is left in the file
    text = COMPOSE_FILE.read_text()
    assert not [v for values in PUBLIC_VALUES.values() for v in values if v in text]


@pytest.mark.parametrize("variable", ["DATABASE_URL", "REDIS_URL"])
def test_compose_gives_every_django_service_the_same_backing(variable: str) -> None:
    services = load_compose()["services"]
    django_services = [s for s in services.values() if s.get("image") == APP_IMAGE]
    assert len(django_services) >= 3
    assert len({s["environment"][variable] for s in django_services}) == 1


def test_every_python_service_sends_its_traces_to_jaeger() -> None:
    services = load_compose()["services"]
    jaeger = services["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/jaeger:2.")
    assert "127.0.0.1:16686:16686" in jaeger["ports"]
    assert "4318" in [str(port) for port in jaeger["expose"]]
    for name, service in services.items():
        if service.get("image") != APP_IMAGE or name == "setup":
            continue
        environment = service["environment"]
        assert environment["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name
        assert service["depends_on"]["jaeger"] == {"condition": "service_started"}


def test_one_image_built_once_runs_every_python_service() -> None:
    # Given the compose file, then one service builds the image and every Python
    # service (each Procfile process among them) runs that same image
    services = load_compose()["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["setup"]
    assert services["setup"]["build"]["context"] == "."
    for name in load_procfile():
        assert services[name]["image"] == APP_IMAGE, name


def test_the_probes_are_cheap_and_follow_the_ports_the_commands_bind() -> None:
    services = load_compose()["services"]
    # The shop's probe is its /healthz, not a page
    assert "/healthz" in " ".join(services["shop"]["healthcheck"]["test"])
    # No Celery broadcast: the workers' and the relay's probe is a heartbeat file
    for name in ("relay", "orders-worker", "fulfillment-worker"):
        probe = " ".join(services[name]["healthcheck"]["test"])
        assert "inspect" not in probe, name
        assert "/tmp/heartbeat" in probe, name
    assert services["orders-worker"]["environment"]["WORKER_HEARTBEAT_FILE"] == (
        "/tmp/heartbeat"
    )
    # The HTTP probes read the port variable their command binds
    for name, variable in (
        ("shop", "SHOP_PORT"),
        ("warehouse", "WAREHOUSE_PORT"),
        ("orders", "ORDERS_PORT"),
        ("edge", "EDGE_PORT"),
    ):
        assert variable in " ".join(services[name]["healthcheck"]["test"]), name
        assert f"${{{variable}:-" in container_command(services[name]), name


def test_the_sale_override_gives_the_new_path_cpus_of_its_own() -> None:
    # Given compose.sale.yml, then exactly the launcher's taskset processes get a cpuset
    sale = YAML(typ="safe").load((ROOT / "compose.sale.yml").read_text())["services"]
    taskset = {
        name
        for name, command in load_procfile().items()
        if "taskset -c $SALE_PATH_CPUS" in command
    }
    assert set(sale) == taskset
    assert {service["cpuset"] for service in sale.values()} == {"${SALE_PATH_CPUS:-1}"}
    # And the file is a valid compose file
    result = subprocess.run(
        [
            check_jsonschema_executable(),
            "--builtin-schema",
            "vendor.compose-spec",
            str(ROOT / "compose.sale.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
