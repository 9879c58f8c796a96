"""docker-compose.production.yml, the stack served over HTTPS: a valid override
that turns DJANGO_HTTPS on for every Django process of docker-compose.yml."""

from __future__ import annotations

import subprocess

from ruamel.yaml import YAML

from tests.project.test_compose import (
    APP_IMAGE,
    ROOT,
    check_jsonschema_executable,
    load_compose,
)

PRODUCTION_FILE = ROOT / "docker-compose.production.yml"


def test_the_production_override_follows_the_compose_specification() -> None:
    result = subprocess.run(
        [check_jsonschema_executable(), "--builtin-schema", "vendor.compose-spec",
         str(PRODUCTION_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr


def test_https_is_off_by_default_and_on_for_every_django_process_in_production() -> (
    None
):
    base = load_compose()["services"]
    production = YAML(typ="safe").load(PRODUCTION_FILE.read_text())["services"]
    django = {
        name for name, service in base.items() if service.get("image") == APP_IMAGE
    }

    # By default the demo runs on plain http://127.0.0.1: cookies must work there
    for name in django:
        assert base[name]["environment"]["DJANGO_HTTPS"] == "${DJANGO_HTTPS:-0}"
    # The production override names only services of the stack, and every Django one
    assert set(production) == django
    for name, service in production.items():
        assert service["environment"]["DJANGO_HTTPS"] == "1", name
        assert service["environment"]["DJANGO_DEBUG"] == "0", name
