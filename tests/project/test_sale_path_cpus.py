"""The new path's bulkhead: SALE_PATH_CPUS, and the Procfile lines that apply it.

The processes are real: the Procfile's own prefix runs under /bin/sh (as honcho and
the compose containers run it) in front of a Python that reports the CPUs it may
use, so the check is the kernel's affinity, not a string.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.memory_groups import procfile_targets
from common import cpus

ROOT = Path(__file__).resolve().parents[2]
SALE_PATH = {"orders", "relay", "orders-worker", "fulfillment-worker"}
PREFIX = "${SALE_PATH_CPUS:+taskset -c $SALE_PATH_CPUS} "
REPORT_CPUS = f"{sys.executable} -c 'import os, json; print(json.dumps(sorted(os.sched_getaffinity(0))))'"  # noqa: E501


@pytest.fixture
def four_cpus(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A Linux machine with taskset and CPUs 0-3, whatever this one has."""
    monkeypatch.setattr(cpus, "available", lambda: [0, 1, 2, 3])
    monkeypatch.setattr(cpus, "supported", lambda: True)
    return [0, 1, 2, 3]


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {
        name.strip(): command.strip()
        for name, _, command in (
            line.partition(":") for line in lines if line and not line.startswith("#")
        )
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", [1]), ("0-3", [0, 1, 2, 3]), ("1,3", [1, 3]), ("2-3,6", [2, 3, 6])],
)
def test_taskset_lists_are_read(text: str, expected: list[int]) -> None:
    assert cpus.parse(text) == expected


@pytest.mark.parametrize("text", ["", "one", "3-1", "1,,2", "-1", "1-"])
def test_a_list_that_names_no_cpu_is_refused_with_the_reason(text: str) -> None:
    with pytest.raises(cpus.CpusError, match="SALE_PATH_CPUS"):
        cpus.parse(text)


def test_unset_it_is_the_upper_half_of_the_cpus(four_cpus: list[int]) -> None:
    assert cpus.sale_path_cpus({}) == "2,3"


@pytest.mark.parametrize("off", ["off", "OFF", "none", "no"])
def test_off_shares_every_cpu(four_cpus: list[int], off: str) -> None:
    assert cpus.sale_path_cpus({"SALE_PATH_CPUS": off}) == ""


def test_every_cpu_is_no_bulkhead_and_a_missing_one_is_an_error(
    four_cpus: list[int],
) -> None:
    assert cpus.sale_path_cpus({"SALE_PATH_CPUS": "0-3"}) == ""
    assert cpus.sale_path_cpus({"SALE_PATH_CPUS": "1,3"}) == "1,3"
    with pytest.raises(cpus.CpusError, match="CPU 4 is not among this machine's"):
        cpus.sale_path_cpus({"SALE_PATH_CPUS": "3-4"})


def test_one_cpu_has_no_bulkhead_to_make(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cpus, "available", lambda: [0])
    monkeypatch.setattr(cpus, "supported", lambda: True)
    assert cpus.sale_path_cpus({}) == ""


def test_without_taskset_it_is_off_but_a_bad_list_is_still_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cpus, "supported", lambda: False)
    assert cpus.sale_path_cpus({}) == ""
    assert cpus.sale_path_cpus({"SALE_PATH_CPUS": "1"}) == ""
    with pytest.raises(cpus.CpusError, match="runs backwards"):
        cpus.sale_path_cpus({"SALE_PATH_CPUS": "1-0"})


def test_the_new_path_and_only_it_carries_the_bulkhead_prefix() -> None:
    lines = procfile()
    assert {name for name, line in lines.items() if line.startswith(PREFIX)} == (
        SALE_PATH
    )
    assert not any(PREFIX.strip() in lines[name] for name in set(lines) - SALE_PATH)
    # bench.memory still finds each process under its prefix
    targets = procfile_targets()
    assert targets["orders"] == "orders_api.asgi:application"
    assert targets["relay"] == "manage.py"
    assert targets["fulfillment-worker"] == "fulfillment_queue.celery_app"


def cpus_under_prefix(value: str | None) -> list[int]:
    env = {k: v for k, v in os.environ.items() if k != "SALE_PATH_CPUS"}
    if value is not None:
        env["SALE_PATH_CPUS"] = value
    done = subprocess.run(
        ["/bin/sh", "-c", PREFIX + REPORT_CPUS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)


def test_the_prefix_pins_the_process_and_empty_leaves_it_free() -> None:
    mine = cpus.available()
    assert cpus_under_prefix(str(mine[-1])) == [mine[-1]]
    assert cpus_under_prefix("") == mine
    assert cpus_under_prefix(None) == mine
