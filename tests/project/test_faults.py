"""Faults as data (common/faults.py): the `faults` command, expiry, the supervisor.

Real Redis (a key prefix of each test's own), real `manage.py` processes, and real
child processes for the supervisor to kill and restart.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command

from common import faults
from common.harness.processes import Process
from common.harness.supervisor import Supervisor
from tests.support.orders_stack import wait_until
from tests.support.processes import ROOT

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"faults-test-{uuid.uuid4().hex[:8]}"
    yield name
    store = faults.fault_store(REDIS_URL, prefix=name)
    keys = list(store.redis.scan_iter(f"{name}:*"))
    if keys:
        store.redis.delete(*keys)


def faults_command(prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return subprocess.run(
        [sys.executable, "manage.py", "faults", *args],
        cwd=ROOT,
        env={**env, "REDIS_URL": REDIS_URL, "FAULTS_KEY_PREFIX": prefix},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_faults_set_list_and_clear_round_trip_through_the_command(prefix: str) -> None:
    # Given no fault in force
    assert faults_command(prefix, "list").stdout.strip() == "no fault in force"

    # When two are set at once, with a TTL
    done = faults_command(
        prefix, "set", "warehouse.latency_ms=400", "warehouse.down=on", "--ttl", "60"
    )

    # Then both are listed with their values, and a process reads them live
    assert done.returncode == 0, done.stderr
    listed = faults_command(prefix, "list").stdout
    assert "warehouse.latency_ms=400" in listed
    assert "warehouse.down=True" in listed
    store = faults.fault_store(REDIS_URL, prefix=prefix)
    reader = faults.FaultReader(store, poll=0.1)
    assert reader.get("warehouse.latency_ms") == 400
    assert reader.get("warehouse.down") is True

    # And clearing one leaves the other; clearing all leaves none, read live too
    faults_command(prefix, "clear", "warehouse.down")
    assert [f.name for f in faults.fault_list(store=store)] == ["warehouse.latency_ms"]
    cleared = faults_command(prefix, "clear")
    assert "warehouse.latency_ms" in cleared.stdout
    assert faults.fault_list(store=store) == []
    wait_until(
        lambda: reader.get("warehouse.latency_ms") is None, timeout=5, what="clear"
    )
    # And every change was logged, latest first
    log = faults_command(prefix, "log").stdout.splitlines()
    assert '"event": "clear"' in log[0]
    assert any('"name": "warehouse.down"' in line for line in log)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "warehouse.bogus=1"), "no fault 'warehouse.bogus'; known: "),
        (("set", "warehouse.error_rate=1.5"), "outside 0..1"),
        (("set", "warehouse.latency_ms=fast"), "'fast' is not a number"),
        (("set", "warehouse.capacity=0"), "outside 1..1000"),
        (("set", "warehouse.down=maybe"), "is not on or off"),
        (("set", "warehouse.down"), "write NAME=VALUE"),
        (("set", "warehouse.down=1", "warehouse.nope=1"), "no fault 'warehouse.nope'"),
    ],
)
def test_a_bad_fault_name_or_value_is_a_clear_error_and_sets_nothing(
    prefix: str,
    args: tuple[str, ...],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    monkeypatch.setenv("FAULTS_KEY_PREFIX", prefix)
    # When the command is given a name or value the catalogue does not allow
    with pytest.raises(CommandError) as refused:
        call_command("faults", *args)

    # Then it fails with a message naming the problem, and nothing is in force
    assert message in str(refused.value)
    store = faults.fault_store(REDIS_URL, prefix=prefix)
    assert faults.fault_list(store=store) == []


def test_a_bad_value_from_the_shell_is_one_line_and_exit_1(prefix: str) -> None:
    done = faults_command(prefix, "set", "warehouse.error_rate=2")
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "CommandError: 2 is outside 0..1 (a share of orders, 0..1)"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "warehouse.down=1", "--ttl", "0"), "a fault lasts 0..3600 s"),
        (("set", "warehouse.down=1", "--ttl", "7200"), "a fault lasts 0..3600 s"),
        (("kill", "shop"), "invalid choice: 'shop'"),
        (("clear", "warehouse.bogus"), "invalid choice: 'warehouse.bogus'"),
    ],
)
def test_a_bad_ttl_process_or_name_to_clear_is_a_usage_error(
    args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("faults", *args)


def test_a_fault_expires_by_itself_and_every_reader_drops_it(prefix: str) -> None:
    # Given a fault set for one second, read by a process's live reader
    store = faults.fault_store(REDIS_URL, prefix=prefix)
    reader = faults.FaultReader(store, poll=0.1)
    faults.fault_set(name="warehouse.capacity", value="2", ttl=1.0, store=store)
    assert reader.get("warehouse.capacity") == 2
    # And a reader whose Redis is gone after it read the fault
    frozen = faults.FaultReader(store, poll=3600)
    assert frozen.get("warehouse.capacity") == 2

    # When its second has passed
    time.sleep(1.2)

    # Then it is gone from Redis, from the listing and from both readers, the one
    # that never re-read it too
    assert faults.fault_list(store=store) == []
    assert store.redis.get(store.key("warehouse.capacity")) is None
    assert reader.get("warehouse.capacity") is None
    assert frozen.get("warehouse.capacity") is None


def sleeper(name: str) -> Process:
    code = "import time\nprint('up', flush=True)\nwhile True: time.sleep(1)"
    return Process(name, [sys.executable, "-c", code], ready_text="up")


def test_the_supervisor_kills_on_request_restarts_and_says_so(prefix: str) -> None:
    # Given a supervisor running a process under its Procfile name
    store = faults.fault_store(REDIS_URL, prefix=prefix)
    said: list[str] = []
    worker = sleeper("fulfillment-worker")
    supervisor = Supervisor(
        {"fulfillment-worker": worker},
        say=said.append,
        store=store,
        restart_delay=0.1,
        poll=0.1,
    )
    supervisor.start()
    try:
        first = worker.pid

        # When `faults kill` asks for it
        answer = faults.fault_kill(process="fulfillment-worker", store=store)

        # Then it was killed (that pid), restarted as a new one, and both were said
        assert answer == {"process": "fulfillment-worker", "pid": first}
        wait_until(
            lambda: worker.running() and worker.pid != first, timeout=10, what="restart"
        )
        wait_until(lambda: store.restarts(), timeout=5, what="the restart counted")
        assert store.restarts() == {"fulfillment-worker": 1}
        assert any("killed on request" in line for line in said)
        assert any("restarting it" in line and "SIGKILL" in line for line in said)
        # And a process it does not run is a clear refusal
        with pytest.raises(faults.FaultError, match="this launcher runs no relay"):
            faults.fault_kill(process="relay", store=store)
    finally:
        supervisor.stop()
    assert not worker.running()
    worker.close()


def test_the_supervisor_gives_up_on_a_crash_loop_and_stops(prefix: str) -> None:
    # Given a process that exits as soon as it starts
    crasher = Process("relay", [sys.executable, "-c", "raise SystemExit(3)"])
    said: list[str] = []
    supervisor = Supervisor(
        {"relay": crasher}, say=said.append, restart_delay=0.05, poll=0.05,
        max_restarts=3,
    )  # fmt: skip

    # When it is supervised
    supervisor.start()
    code = supervisor.wait()
    supervisor.stop()
    crasher.close()

    # Then the supervisor gives up after its restarts, and says why
    assert code == 1
    assert supervisor.gave_up == "relay"
    assert sum("restarting it" in line for line in said) == 3
    assert "giving up" in said[-1]
    assert "exit 3" in said[-1]
