"""The capacity gate on its own: slots, refusals, peak and reset (no HTTP, no DB)."""

from __future__ import annotations

import threading

import pytest

from warehouse.admission import Admission, source_of


def test_gate_admits_up_to_capacity_then_refuses_and_counts() -> None:
    # Given a gate of capacity 2
    gate = Admission(capacity=2)

    # When three orders try to enter
    entered = [gate.try_enter() for _ in range(3)]

    # Then two are in and the third is refused and counted
    assert entered == [True, True, False]
    stats = gate.snapshot()
    assert (stats.in_flight, stats.peak_in_flight, stats.refused) == (2, 2, 1)

    # And a freed slot admits again
    gate.leave()
    assert gate.try_enter() is True


def test_reset_keeps_live_in_flight_and_zeroes_the_window() -> None:
    # Given a gate with one order in flight, one fulfilled and one refused
    gate = Admission(capacity=1)
    assert gate.try_enter()
    gate.record_fulfilled()
    assert not gate.try_enter()
    since = gate.snapshot().since

    # When it is reset
    stats = gate.reset()

    # Then the counters restart, and the order still in flight is still counted
    assert stats.in_flight == 1
    assert stats.peak_in_flight == 1
    assert (stats.fulfilled, stats.refused) == (0, 0)
    assert stats.since >= since


def test_gate_never_admits_more_than_capacity_from_many_threads() -> None:
    # Given a gate of capacity 3 and 64 threads that each try once, all together
    gate = Admission(capacity=3)
    barrier = threading.Barrier(64)
    results: list[bool] = []
    lock = threading.Lock()

    def attempt() -> None:
        barrier.wait()
        admitted = gate.try_enter()
        with lock:
            results.append(admitted)

    threads = [threading.Thread(target=attempt) for _ in range(64)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # Then exactly 3 got in, and every other attempt is a counted refusal
    assert results.count(True) == 3
    stats = gate.snapshot()
    assert stats.peak_in_flight == 3
    assert stats.refused == 61


def test_leave_without_enter_is_a_bug() -> None:
    with pytest.raises(RuntimeError):
        Admission(capacity=1).leave()


def test_capacity_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Admission(capacity=0)


def test_the_peak_is_also_counted_per_caller() -> None:
    # Given a gate of 8, and orders from the queue (MU-) and the legacy shop (LF-)
    gate = Admission(capacity=8)
    for _ in range(4):
        assert gate.try_enter(source_of("MU-ABC123"))
    assert gate.try_enter(source_of("LF-XYZ"))

    # When they leave and a reset starts a new window with one MU order in flight
    before = gate.snapshot()
    for _ in range(3):
        gate.leave("MU")
    gate.leave("LF")
    after = gate.reset()

    # Then each caller's peak was its own, and the new window starts from now
    assert before.peak_in_flight == 5
    assert before.peak_in_flight_by_source == {"MU": 4, "LF": 1}
    assert after.peak_in_flight_by_source == {"MU": 1}
    assert source_of("no-prefix-here") == "no"
    assert source_of("plain") == "other"
    assert source_of("A B-1") == "other"


def test_the_orders_in_flight_now_are_counted_per_caller_and_leave_when_done() -> None:
    # Given a gate of 8 with three orders from the queue and one from the legacy shop
    gate = Admission(capacity=8)
    for _ in range(3):
        assert gate.try_enter("MU")
    assert gate.try_enter("LF")

    # When two queue orders and the shop's order leave
    during = gate.snapshot()
    gate.leave("MU")
    gate.leave("MU")
    gate.leave("LF")

    # Then the live split followed them, and a caller with none is left out
    assert during.in_flight_by_source == {"MU": 3, "LF": 1}
    assert gate.snapshot().in_flight_by_source == {"MU": 1}
