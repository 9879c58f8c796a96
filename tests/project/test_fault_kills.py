"""`faults kill` with no launcher, as under docker compose (common/fault_kills.py): a
real warehouse under gunicorn, told its name by FAULTS_PROCESS as compose tells it,
kills itself and its process group on request; with nobody to take the request, the
kill is refused at once, saying what to do. Docker itself is not needed: the
container's init is what restarts it (tests/compose runs the real compose stack)."""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator

import pytest

from common import faults
from common.harness.processes import port_answers
from common.harness.services import warehouse_process
from tests.support.orders_stack import wait_until

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def store() -> Iterator[faults.FaultStore]:
    prefix = f"faults-test-{uuid.uuid4().hex[:8]}"
    found = faults.fault_store(REDIS_URL, prefix=prefix)
    yield found
    keys = list(found.redis.scan_iter(f"{prefix}:*"))
    if keys:
        found.redis.delete(*keys)


def test_with_no_launcher_the_process_kills_itself_and_its_group(
    store: faults.FaultStore,
) -> None:
    # Given the warehouse as compose runs it: gunicorn, told its name, no launcher
    env = {
        "FAULTS_PROCESS": "warehouse",
        "REDIS_URL": REDIS_URL,
        "FAULTS_KEY_PREFIX": store.prefix,
    }
    with warehouse_process("kill_self", env=env) as warehouse:
        assert warehouse.process is not None
        group = os.getpgid(warehouse.pid)
        # once its gunicorn master is ready, it says it takes its own kills
        wait_until(lambda: store.is_alive("warehouse"), timeout=10, what="its watcher")
        assert not store.is_alive("launcher")

        # When `faults kill warehouse` asks for it
        answer = faults.fault_kill(process="warehouse", store=store)

        # Then it answered for itself, then died of SIGKILL, its workers with it,
        # as a crash would end its container (exit 137) for compose to restart
        assert answer["process"] == "warehouse"
        assert answer["by"] == "itself"
        assert warehouse.process.wait(timeout=10) == -signal.SIGKILL
        wait_until(lambda: not _group_alive(group), timeout=10, what="its group gone")
        assert not port_answers(warehouse.bound_port)
        # And the kill is in the faults' log, by whom
        logged = store.log_read(5)
        assert logged[0]["event"] == "killed"
        assert logged[0]["by"] == "itself"
        # And no request is left for the next one to act on
        assert store.kill_requests_take(queue="kill-self:warehouse") == []


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_with_nobody_to_take_it_a_kill_is_refused_at_once_saying_what_to_do(
    store: faults.FaultStore,
) -> None:
    # Given a stack with no launcher and no process watching for its own kill
    # When a kill is asked for (a wait long enough to notice if it were used)
    with pytest.raises(faults.FaultError) as refused:
        faults.fault_kill(process="relay", store=store, wait=3600)
    # Then the error names both ways to have one, and what to do by hand
    message = str(refused.value)
    assert "nothing takes kill requests for relay" in message
    assert "`make demo`" in message
    assert "FAULTS_PROCESS=relay" in message
    assert "`docker compose kill relay`, then `docker compose start relay`" in message
    # And no request was left in any queue
    assert store.kill_requests_take() == []
    assert store.kill_requests_take(queue="kill-self:relay") == []


def test_a_launcher_gone_silent_is_an_error_and_leaves_no_request(
    store: faults.FaultStore,
) -> None:
    # Given a launcher that said it was there, then stopped taking requests
    store.alive("launcher", ttl=30)
    # When a kill is asked for
    with pytest.raises(faults.FaultError, match="the launcher did not answer"):
        faults.fault_kill(process="relay", store=store, wait=0.5)
    # Then the request is withdrawn: a launcher started later does not act on it
    assert store.kill_requests_take() == []
