"""Monitoring on this host: what the pnode's samplers saw, against what was done (iperf3 through a
shaped link, a memory-hungry process, a CPU-bound loop at half speed, a saturated pnode)."""

from __future__ import annotations

import os
import subprocess
import warnings
import time

import pytest

import distem
from distem.errors import FidelityWarning, ValidationError

from .conftest import platform_leftovers

pytestmark = [pytest.mark.root, pytest.mark.guest]

RATE_MBIT = 20
# The shaper counts each TCP segment's whole frame (1448 bytes of payload in 1514 on a 1500 MTU);
# the interfaces' counters count GSO batches, their headers once: they carry the payload's rate.
PAYLOAD = 1448 / 1514
INTERVAL = 0.5
# An interval's mean RTT against a 10 ms delay plus the unshaped RTT: 1 ms on this host; under QEMU TCG
# a slow reply in an interval lifts its mean (by up to 1.0 ms measured), so 1.5 ms there.
RTT_SLACK_MS = 1.5 if os.environ.get("DISTEM_IN_GUEST") == "qemu" else 1.0
TOLERANCE = 0.05


@pytest.fixture(scope="module")
def watched(state_dir, busybox):
    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        p.vnetwork("vnet", "10.144.0.0/24")
        p.vnode("a").image(busybox).iface("if0", "vnet", output={"bandwidth": {"rate": f"{RATE_MBIT}mbps"}})
        p.vnode("b").image(busybox).iface("if0", "vnet")
        p.vnode("c").image(busybox).iface("if0", "vnet")
        p.deploy()
        assert p.wait_vnodes({"port": None, "timeout": 30})
        p.ping("a", "b", count=3)
        yield p
    finally:
        p.close()
        assert platform_leftovers(p.id, state_dir) == []


@pytest.fixture
def monitored(watched):
    watched.monitor_start(INTERVAL)
    try:
        yield watched
    finally:
        watched.monitor_stop()


def now(p) -> float:
    """Seconds on the monitor's clock."""
    return time.time() - p.metrics.attrs["epoch"]


def within(series, start: float, end: float):
    """The samples whose whole interval lies in [start, end]."""
    return series[(series.index - INTERVAL >= start) & (series.index <= end)]


def test_a_shaped_link_s_sampled_rate_is_its_rate_and_zero_around_the_traffic(monitored):
    p = monitored
    time.sleep(2.1)
    began = now(p)
    result = p.measure_throughput("a", "b", seconds=5)
    ended = now(p)
    time.sleep(2.1)
    rx = p.metric_series("rx_mbit_s", ["b"])["b/if0"]
    steady = within(rx, began + 1.5, ended - 1.5)
    goodput = result["received_bps"] / 1e6
    assert len(steady) >= 3, rx.to_string()
    assert steady.to_numpy() == pytest.approx(RATE_MBIT * PAYLOAD, rel=TOLERANCE), steady.to_string()
    assert steady.mean() == pytest.approx(goodput, rel=TOLERANCE)
    before, after = within(rx, 0, began), within(rx, ended + INTERVAL, now(p))
    assert len(before) >= 2 and len(after) >= 2
    assert before.max() < 0.05 and after.max() < 0.05, (before.to_string(), after.to_string())
    tx = p.metric_series("tx_mbit_s", ["a"])["a/if0"]
    assert within(tx, began + 1.5, ended - 1.5).mean() == pytest.approx(steady.mean(), rel=TOLERANCE)
    assert p.fidelity().query("what == 'over its rate'").empty


def test_a_memory_hungry_process_shows_in_its_vnode_s_memory(monitored):
    p = monitored
    time.sleep(1.1)
    began = now(p)
    p.check("c", "dd if=/dev/zero bs=100M count=1 2>/dev/null | sleep 4")  # dd holds its 100 MB buffer
    # (filling it takes 0.1 s on this host, up to 2.5 s in the user-mode guest)
    ended = now(p)
    time.sleep(1.1)
    memory = p.metric_series("memory_bytes", ["c"])["c"] / 2**20  # a gauge: read at each instant
    base = memory[memory.index < began].median()
    held = memory[(memory.index > began) & (memory.index < ended)]
    assert held.max() - base >= 95, memory.to_string()
    assert memory[memory.index > ended + 0.1].max() - base < 20, memory.to_string()
    peak = p.metric_series("memory_peak_bytes", ["c"])["c"] / 2**20
    assert peak.iloc[-1] - base >= 95


def test_a_loop_at_half_speed_uses_half_a_cpu_second_per_second(monitored):
    p = monitored
    p.vcpu_create("c", 0.5, "ratio", corenb=1)
    try:
        began = now(p)
        p.check("c", "timeout 5 sh -c 'while :; do :; done'; true", timeout=10)
        ended = now(p)
    finally:
        p.vcpu_remove("c")
    cpu = p.metric_series("cpu", ["c"])["c"]
    # The loop starts once the vnode is entered and its shell runs: under QEMU TCG up to ~0.6 s after
    # `began` (an interval from began + 0.6 once read 0.455 CPU-s/s, the loop's start inside it).
    steady = within(cpu, began + 1.0, ended - 0.3)
    assert len(steady) >= 4, cpu.to_string()
    assert steady.to_numpy() == pytest.approx(0.5, rel=TOLERANCE), steady.to_string()
    throttled = p.metric_series("cpu_throttled", ["c"])["c"]
    # the quota held it back (0.5 s/s on cgroup v1, 0.4 on v2, which counts throttling otherwise)
    assert within(throttled, began + 1.0, ended - 0.3).median() > 0.2


def test_a_saturated_pnode_is_flagged_and_shaded(monitored):
    p = monitored
    time.sleep(0.6)
    began = now(p)
    loops = [subprocess.Popen(["timeout", "2.5", "sh", "-c", "while :; do :; done"]) for _ in range(4)]
    for loop in loops:
        loop.wait()
    time.sleep(0.6)
    busy = p.fidelity().query("what == 'pnode busy'")
    assert len(busy) >= 1, p.metric_series("cpu_busy")
    assert busy.start.min() >= began - INTERVAL and busy.end.max() - busy.start.min() >= 1.5
    ax = p.plot_metrics("cpu")
    assert any(patch.get_alpha() for patch in ax.patches)  # the busy band behind the series
    import matplotlib.pyplot as plt
    plt.close("all")


def test_events_are_drawn_on_the_monitor_s_clock(monitored):
    p = monitored
    p.at(0.5).bandwidth("a", "if0", "10mbps", "output")
    p.at(1.0).bandwidth("a", "if0", "20mbps", "output")
    p.event_manager_start()
    p.events_wait(timeout=10)
    times = p.monitor_events
    assert list(times.outcome) == ["ok", "ok"]
    assert (times.time - times.applied_s).round(2).nunique() == 1  # one shift, the gap between the two starts
    assert times.time.iloc[0] > 0
    ax = p.plot_metrics("rx_mbit_s", ["b"])
    assert len(ax.lines) >= 3  # the series and one line per event
    import matplotlib.pyplot as plt
    plt.close("all")


def test_distem_probes_sample_an_interface_and_the_load(watched):
    p = watched
    ref = time.time() + 1000.0
    p.pnodes_launch_probes({"ProbeBW": {"name": "lobw", "frequency": 4, "interface": "lo"},
                            "ProbeLoadAvg": {"name": "load", "frequency": 2}}, ref)
    try:
        time.sleep(0.6)
        subprocess.run(["fping", "-q", "-c", "20", "-p", "20", "127.0.0.1"], check=True)
        time.sleep(0.6)
        p.pnodes_stop_probes()
        data = p.pnodes_get_probes_data()["local"]
        p.pnodes_restart_probes()
        time.sleep(0.6)
        again = p.pnodes_get_probes_data()["local"]
    finally:
        p.pnodes_delete_probes()
    assert set(data) == {"lobw", "load"}
    assert len(data["lobw"]) >= 4 and len(data["load"]) >= 2
    for t, (rx, tx) in data["lobw"]:
        assert abs(t - ref) < 10 and rx == tx >= 0  # on lo, what goes out comes in
    assert max(rx for _, (rx, _) in data["lobw"]) > 500  # fping's 20 echoes and replies
    assert all(len(v) == 3 and v[0] >= 0 for _, v in data["load"])
    assert len(again["lobw"]) > len(data["lobw"])
    assert p.pnodes_get_probes_data() == {"local": {}}


def test_bad_monitoring_requests_are_refused_before_anything_starts(watched):
    p = watched
    for kwargs, field in (({"interval": 0.05}, "interval"), ({"interval": "1s"}, "interval"),
                          ({"max_mb": 0}, "max_mb")):
        with pytest.raises(ValidationError) as err:
            p.monitor_start(**kwargs)
        assert err.value.field == field
    assert not p._monitor.running()
    with pytest.raises(ValidationError, match="allowed: ProbeBW, ProbeLoadAvg"):
        p.pnodes_launch_probes({"ProbeCPU": {"name": "x", "frequency": 1}})
    with pytest.raises(ValidationError, match="at most 10 Hz"):
        p.pnodes_launch_probes({"ProbeLoadAvg": {"name": "x", "frequency": 50}})
    with pytest.raises(ValidationError, match="allowed: frequency, interface, name"):
        p.pnodes_launch_probes({"ProbeBW": {"name": "x", "interface": "lo", "freq": 1}})
    p.monitor_start(1.0)
    try:
        with pytest.raises(ValidationError, match="monitoring is on already"):
            p.monitor_start(1.0)
    finally:
        p.monitor_stop()


def test_a_measurement_on_a_saturated_pnode_says_so(watched):
    if os.environ.get("DISTEM_IN_GUEST"):
        pytest.skip("the guest's one emulated CPU is over 90% busy with fping alone: no quiet pnode to compare")
    p = watched
    with warnings.catch_warnings():
        warnings.simplefilter("error", FidelityWarning)
        quiet = p.measure_latencies(["a", "b", "c"], count=5)
    assert quiet.attrs["pnode_busy"]["local"] < 0.9
    loops = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(4)]
    try:
        time.sleep(0.3)
        with pytest.warns(FidelityWarning, match="local was .* CPU busy"):
            loaded = p.compare_latencies(["a", "b", "c"], count=20)
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()
    assert loaded.attrs["pnode_busy"]["local"] > 0.9


def test_rtts_follow_a_latency_change_and_a_churned_source(watched):
    # The churn comes after the latency change: on the guest's one emulated CPU, a vnode's stop
    # stalls the agent and delays the other vnodes' replies (an interval at 12.25 ms for 10.64).
    p = watched
    p.monitor_start(INTERVAL, rtt=[("a", "b"), ("c", "b")])
    try:
        p.at(1).latency("a", "if0", "10ms", "output")
        p.at(2.5).latency("a", "if0", "0ms", "output")
        p.at(3.5).down("c")
        p.at(5).up("c")
        p.event_manager_start()
        events = p.events_wait(timeout=10)
        time.sleep(2.0)
    finally:
        p.event_manager_stop()
        p.monitor_stop()
    assert (events.outcome == "ok").all(), events.message.tolist()
    shift = (p.monitor_events.time - events.applied_s).iloc[0]  # the events' clock to the monitor's
    rtt, replies = p.metric_series("rtt_ms"), p.metric_series("rtt_replies")
    end = rtt.index.max()

    def phase(series, start: float, stop: float):  # intervals inside [start, stop] of the events' clock
        return within(series, start + shift, stop + shift)

    unshaped = phase(rtt["a->b"], -shift, 1.0)
    assert unshaped.max() < RTT_SLACK_MS
    delayed = phase(rtt["a->b"], 1.05, 2.5)  # the delay adds to the path's own RTT (0.6-0.9 ms under TCG)
    assert delayed.to_numpy() == pytest.approx(10.0 + unshaped.mean(), abs=RTT_SLACK_MS), rtt["a->b"].to_string()
    down = events[events.value == "down"].applied_s.iloc[0]  # a stop takes a while in the guest
    assert phase(rtt["a->b"], 2.55, down).max() < RTT_SLACK_MS
    assert (phase(replies["c->b"], down, 5.0) == 0).all(), replies["c->b"].to_string()
    back = phase(replies["c->b"], 5.5 + INTERVAL, end - shift)  # a new fping in c's new namespace
    assert len(back) and (back > 0).all(), replies["c->b"].to_string()
