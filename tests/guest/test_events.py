"""Events on a kernel with sch_netem (the guest kernel of ``make test``): a latency trace and a
latency-matrix cell at their instants, and a partition, as on the host with the delay line."""

from __future__ import annotations

import os

import pytest

from .conftest import netem_platform
from ..test_events import SLACK_MS as HOST_SLACK_MS
from ..test_events import STEP_MS, _ping, first_after, held

pytestmark = [pytest.mark.root, pytest.mark.guest]
SLACK_MS = 0.8 if os.environ.get("DISTEM_IN_GUEST") else HOST_SLACK_MS  # as in test_netem.py


@pytest.fixture(scope="module")
def trio(state_dir, busybox):
    with netem_platform(state_dir, busybox, ("a", "b", "c")) as p:
        yield p


def test_a_latency_trace_and_a_matrix_cell_step_at_their_instants(trio):
    """a's output 10 -> 40 ms at 1 s, then a matrix cell a -> b of 20 ms at 2.5 s (the ifb's leaves
    then carry both): RTT a -> b 10, 40, 60 ms."""
    trio.event_trace_add({"type": "viface", "vnodename": "a", "vifacename": "if0", "viface_direction": "output"},
                         "latency", {0: 10, 1: 40})
    trio.at(2.5).latencies({("a", "b"): 20})
    trio.event_manager_start()
    try:
        replies = _ping(trio, 3.6)
        events = trio.events_wait(timeout=30)
    finally:
        trio.event_manager_stop()
    assert list(events.outcome) == ["ok"] * 3, events.message.tolist()
    up = first_after(replies, 0.5, lambda rtt: rtt > 25)
    cell = first_after(replies, up + 0.2, lambda rtt: rtt > 50)
    assert abs(up - 1.0) * 1000 <= STEP_MS, f"40 ms began at {up:.3f} s"
    assert abs(cell - 2.5) * 1000 <= STEP_MS, f"the cell began at {cell:.3f} s"
    assert held(replies, 0.1, 0.95) == pytest.approx(10, abs=SLACK_MS)
    assert held(replies, 1.05, 2.45) == pytest.approx(40, abs=SLACK_MS)
    assert held(replies, 2.55, 3.4) == pytest.approx(60, abs=SLACK_MS)
    trio.latencies = trio.latencies * 0
    trio.voutput_update("a", "if0", {"latency": "0ms"})


def test_a_partition_cuts_the_cross_pairs_under_netem(trio):
    trio.partition(["a", "b"], ["c"])
    try:
        assert trio.reachable("a", ["b", "c"], timeout_ms=300) == {"b": True, "c": False}
        assert trio.reachable("c", ["a", "b"], timeout_ms=300) == {"a": False, "b": False}
    finally:
        trio.heal()
    assert all(trio.reachable("c", ["a", "b"]).values())
