"""The sale's CPU table: each part's processes found by their command and checkout,
their children included, read from the kernel (real processes, no stand-ins)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.stack_cpu import stack_cpu_figures, stack_cpu_read

# A child that spins a thread until its stdin closes; its parent only waits.
SPIN = """
import sys, threading
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
sys.stdin.read()
"""
BURN = f"""
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", {SPIN!r}], stdin=sys.stdin)
sys.stdin.read()
child.wait()
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.stdin is not None and not process.stdin.closed:
        process.stdin.close()
    process.wait(timeout=10)


@pytest.fixture
def burning(
    tmp_path: Path,
) -> Iterator[tuple[Path, subprocess.Popen[bytes], subprocess.Popen[bytes]]]:
    """A 'shop.wsgi' process tree in one checkout, and one in another."""
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    processes = []
    for where in (ours, theirs):
        where.mkdir()
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", BURN, "shop.wsgi"],
                cwd=where,
                stdin=subprocess.PIPE,
            )
        )
    try:
        yield ours, processes[0], processes[1]
    finally:
        for process in processes:
            _stop(process)


def test_a_part_is_its_processes_and_their_children_in_this_checkout_only(
    burning: tuple[Path, subprocess.Popen[bytes], subprocess.Popen[bytes]],
) -> None:
    ours, our_tree, their_tree = burning
    first = stack_cpu_read(ours)
    # Until the burning child (not the parent, which waits) has used some CPU
    deadline = time.monotonic() + 30
    while stack_cpu_read(ours)["shop"] <= first["shop"] + 0.2:
        assert time.monotonic() < deadline, "the child's CPU was never counted"
        time.sleep(0.1)
    later = stack_cpu_read(ours)
    # Then only the shop has it
    assert {part for part, cpu in later.items() if cpu > 0} == {"shop"}
    # and once our tree is gone, nothing is ours: the other checkout's tree, still
    # burning, is not counted
    _stop(our_tree)
    assert their_tree.poll() is None
    assert stack_cpu_read(ours)["shop"] == 0


def test_nothing_found_is_no_figure_and_the_new_path_is_per_accepted_order() -> None:
    empty = dict.fromkeys(("edge", "shop", "orders", "relay"), 0.0)
    assert stack_cpu_figures(empty, empty, seconds=10, accepted=5) is None
    before = {"edge": 1.0, "shop": 2.0, "orders": 3.0, "relay": 0.5,
              "orders-worker": 0.0, "fulfillment-worker": 0.0}  # fmt: skip
    after = {"edge": 2.0, "shop": 4.5, "orders": 5.0, "relay": 1.0,
             "orders-worker": 1.5, "fulfillment-worker": 1.0}  # fmt: skip
    figures = stack_cpu_figures(before, after, seconds=10, accepted=100)
    assert figures is not None
    assert figures["cpu_seconds"]["shop"] == 2.5
    assert figures["core_share"]["edge"] == 0.1
    # orders 2 + relay 0.5 + workers 1.5 + 1 = 5 s for 100 orders
    assert figures["new_path_cpu_seconds"] == 5.0
    assert figures["new_path_ms_per_accepted"] == 50.0
    unsold = stack_cpu_figures(before, after, seconds=10, accepted=0)
    assert unsold is not None
    assert unsold["new_path_ms_per_accepted"] is None
