"""Events over time on this host (the userspace delay line): effects measured with ping from inside
the vnodes, at the planned instants; bad schedules refused whole; stopping ends every timeline."""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import distem
from distem.errors import ValidationError

from .conftest import platform_leftovers

pytestmark = pytest.mark.root

STEP_MS = 50  # a change must show within this of its planned instant (the bound)
SLACK_MS = 0.5  # a held RTT's median vs the asked delay (the delay line's 0.3 ms, plus the base RTT)
REPLY = re.compile(r"^\[(?P<ts>[\d.]+)\] (?P<dst>\S+) : \[\d+\], \d+ bytes, (?P<rtt>[\d.]+) ms")


@pytest.fixture(scope="module")
def pair(state_dir, busybox):
    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        p.vnetwork("vnet", "10.144.0.0/24")
        p.vnode("a").image(busybox).iface("if0", "vnet")
        p.vnode("b").image(busybox).iface("if0", "vnet")
        p.vnode("c").image(busybox).iface("if0", "vnet")
        p.deploy()
        assert p.wait_vnodes({"port": None, "timeout": 30})
        p.ping("a", "b", count=50)  # ARP resolved and the path warm before any schedule starts
        yield p
    finally:
        p.close()


def pings(p, vnode: str, addresses: list[str], seconds: float) -> dict[str, list[tuple[float, float]]]:
    """(send time in s from the schedule's start, RTT ms) of each reply of a 10 ms fping from ``vnode``."""
    out = p.host_execute(vnode, ["fping", "-D", "-C", str(int(seconds * 100)), "-p", "10", "-i", "1", "-t", "2000",
                                 *addresses], timeout=seconds + 10, check=False)
    epoch = p._events.epoch or 0.0
    replies: dict[str, list[tuple[float, float]]] = {address: [] for address in addresses}
    for line in out.splitlines():
        match = REPLY.match(line)
        if match:
            rtt = float(match["rtt"])
            replies[match["dst"]].append((float(match["ts"]) - rtt / 1000 - epoch, rtt))
    return replies


def _ping(p, seconds: float) -> list[tuple[float, float]]:
    return pings(p, "a", ["10.144.0.2"], seconds)["10.144.0.2"]


def first_after(replies, since: float, test) -> float:
    return next(sent for sent, rtt in replies if sent >= since and test(rtt))


def held(replies, start: float, end: float) -> float:
    return statistics.median(rtt for sent, rtt in replies if start <= sent < end)


def test_a_latency_trace_steps_at_its_instants_and_holds(pair):
    """10 -> 40 -> 10 ms on a's output at t = 1 s and 2.5 s, seen by a 10 ms ping."""
    pair.event_trace_add({"type": "viface", "vnodename": "a", "vifacename": "if0", "viface_direction": "output"},
                         "latency", {0: 10, 1: 40, 2.5: 10})
    pair.event_manager_start()
    try:
        replies = _ping(pair, 3.6)
        events = pair.events_wait(timeout=10)
    finally:
        pair.event_manager_stop()
    assert list(events.outcome) == ["ok"] * 3, events.message.tolist()
    up = first_after(replies, 0.5, lambda rtt: rtt > 25)
    down = first_after(replies, up, lambda rtt: rtt < 25)
    assert abs(up - 1.0) * 1000 <= STEP_MS, f"40 ms began at {up:.3f} s"
    assert abs(down - 2.5) * 1000 <= STEP_MS, f"10 ms came back at {down:.3f} s"
    assert held(replies, 0.1, 0.95) == pytest.approx(10, abs=SLACK_MS)
    assert held(replies, 1.05, 2.45) == pytest.approx(40, abs=SLACK_MS)
    assert held(replies, 2.55, 3.4) == pytest.approx(10, abs=SLACK_MS)
    assert events.skew_ms.abs().max() < STEP_MS
    assert pair.model.vnode("a").iface("if0").output.delay_us == 10_000  # the model took the run in
    pair.voutput_update("a", "if0", {"latency": "0ms"})


def test_churn_takes_a_vnode_down_and_back_at_its_instants(pair):
    """Down at 1 s, up at 3 s: the pinger's replies stop at 1 s and resume once b has booted."""
    pair.at(1).down("b")
    pair.at(3).up("b")
    pair.event_manager_start()
    try:
        replies = _ping(pair, 5)
        events = pair.events_wait(timeout=10).set_index("value")
    finally:
        pair.event_manager_stop()
    assert list(events.outcome) == ["ok", "ok"], events.message.tolist()
    last_before = max(sent for sent, _ in replies if sent < 2)
    back = min(sent for sent, _ in replies if sent > 2)
    boot = events.loc["up", "took_ms"] / 1000
    assert 1.0 - STEP_MS / 1000 <= last_before <= 1.0 + STEP_MS / 1000, f"last reply sent at {last_before:.3f} s"
    assert 3.0 <= back <= events.loc["up", "applied_s"] + 1.0, f"back at {back:.3f} s, b booted in {boot:.3f} s"
    assert pair.model.status["b"] == "RUNNING"


def test_a_bad_schedule_is_refused_whole_before_anything_runs(pair):
    before = pair.model.vnode("a")
    pair.at(1).latency("a", "if0", "20ms")
    pair.at(2).latency("nosuch", "if0", "20ms")
    with pytest.raises(ValidationError, match=r"event 1.*nosuch.*the schedule is kept"):
        pair.event_manager_start()
    assert [e.target.vnode for e in pair.event_remove(1)] == ["nosuch"]
    assert list(pair.events.resource) == ["a.if0"]
    with pytest.raises(ValidationError, match=r"row: 1 .*0 to 0"):
        pair.event_remove(1)
    pair.event_manager_stop()
    pair.at(1).latency("a", "if0", "20ms", direction="output")
    pair.at(1).latency("a", "if0", "30ms", direction="output")
    with pytest.raises(ValidationError, match="contradicts"):
        pair.event_manager_start()
    pair.event_manager_stop()
    pair.at(1).down("b")
    pair.at(2).down("b")
    with pytest.raises(ValidationError, match=r"event 1: .*is DOWN then"):
        pair.event_manager_start()
    pair.event_manager_stop()
    assert pair.model.vnode("a") == before and pair.model.status["b"] == "RUNNING"
    assert pair._events.run is None or pair._events.run.finished
    assert held(_ping(pair, 0.2), 0, 1e9) < 1  # nothing was applied


def test_stopping_mid_run_leaves_nothing_firing_later(pair):
    pair.at(0.5).latency("a", "if0", "20ms", direction="output")
    pair.at(2).latency("a", "if0", "60ms", direction="output")
    pair.event_manager_start()
    began = time.monotonic()
    assert list(pair.events_wait(timeout=0.2).outcome)[1] == "not applied"
    assert time.monotonic() - began < 0.5  # the timeout, not the last instant (2 s)
    time.sleep(0.8)
    with pytest.raises(ValidationError, match="event schedule is running"):
        pair.voutput_update("a", "if0", {"latency": "1ms"})
    pair.event_manager_stop()
    events = pair.events
    assert list(events.outcome) == ["ok", "not applied"]
    time.sleep(1.5)  # past the second event's instant
    assert held(_ping(pair, 0.2), 0, 1e9) == pytest.approx(20, abs=SLACK_MS)
    assert pair.model.vnode("a").iface("if0").output.delay_us == 20_000
    pair.voutput_update("a", "if0", {"latency": "0ms"})


def test_relative_changes_and_a_seeded_random_source(pair):
    pair.at(0.2).latency("a", "if0", "10ms", direction="output")
    pair.at(0.4).latency("a", "if0", "+5ms", direction="output")
    pair.at(0.6).latency("a", "if0", "200%", direction="output")
    generator = {"date": {"distribution": "uniform", "min": 0.1, "max": 0.2},
                 "value": {"distribution": "uniform", "min": 1, "max": 5}}
    seed = pair.event_random_add({"type": "viface", "vnodename": "b", "vifacename": "if0",
                                  "viface_direction": "output"}, "loss", generator, seed=11, until=1.5)
    planned = pair.events
    assert seed == 11 and (planned.source == "random seed=11").sum() >= 7
    assert planned.equals(pair.events)  # the same seed, the same schedule
    assert pair.events_preview(duration=5).equals(planned)  # its own until, whatever the duration
    pair.event_random_add({"type": "viface", "vnodename": "c", "vifacename": "if0"}, "loss", generator, seed=12)
    assert len(pair.events_preview(duration=3)) < len(pair.events)  # drawn to the duration, else 600 s
    removed = pair.event_remove(list(pair.events.source).index("random seed=12"))
    assert len(removed) > 1000 and pair.events.equals(planned)  # its draws went with it
    pair.event_manager_start()
    events = pair.events_wait(timeout=10)
    pair.event_manager_stop()
    assert (events.outcome == "ok").all(), events.message.tolist()
    assert (events.skew_ms - events.late_ms - events.took_ms).abs().max() < 1e-6
    assert events.late_ms.median() < 20, events.late_ms.tolist()
    assert pair.model.vnode("a").iface("if0").output.delay_us == 30_000
    assert held(_ping(pair, 0.2), 0, 1e9) == pytest.approx(30, abs=SLACK_MS)
    pair.voutput_update("a", "if0", {"latency": "0ms"})
    pair.voutput_update("b", "if0", {"loss": 0})


def reach(p) -> set[tuple[str, str]]:
    """The ordered pairs that answer a ping."""
    return {(src, dst) for src in ("a", "b", "c") for dst, ok in p.reachable(src, timeout_ms=300).items()
            if ok and dst != src}


ALL = {(s, d) for s in "abc" for d in "abc" if s != d}


def test_a_partition_cuts_exactly_the_cross_pairs_and_heal_restores_them(pair):
    pair.at(0.2).partition(["a", "b"], ["c"])
    pair.at(2.5).heal()
    pair.event_manager_start()
    time.sleep(0.8)
    during = reach(pair)
    events = pair.events_wait(timeout=10)
    pair.event_manager_stop()
    assert list(events.outcome) == ["ok", "ok"], events.message.tolist()
    assert during == {("a", "b"), ("b", "a")}
    assert reach(pair) == ALL
    pair.partition(["a"], ["b"])  # live, and c (in no group) still reaches both
    try:
        assert reach(pair) == ALL - {("a", "b"), ("b", "a")}
        pair.vnode_stop("a")
        pair.vnode_start("a")  # a restarted vnode is cut again
        assert pair.wait_vnodes({"port": None, "timeout": 30})
        assert not pair.reachable("a", ["b"], timeout_ms=300)["b"] and pair.reachable("a", ["c"])["c"]
    finally:
        pair.heal()
    assert reach(pair) == ALL
    with pytest.raises(ValidationError, match="two groups"):
        pair.partition(["a", "b"])
    with pytest.raises(ValidationError, match="one group at most"):
        pair.partition(["a", "b"], ["b"])


def test_a_link_down_event_cuts_the_carrier_and_up_restores_it(pair):
    pair.at(0.2).link_down("b", "if0")
    pair.at(1.5).link_up("b", "if0")
    pair.event_manager_start()
    time.sleep(0.6)
    carrier = pair.check("b", ["cat", "/sys/class/net/if0/carrier"]).strip()
    cut = pair.reachable("a", ["b"], timeout_ms=300)["b"]
    events = pair.events_wait(timeout=10)
    pair.event_manager_stop()
    assert list(events.outcome) == ["ok", "ok"], events.message.tolist()
    assert (carrier, cut) == ("0", False)  # no carrier inside b: not a 100 % loss
    assert pair.check("b", ["cat", "/sys/class/net/if0/carrier"]).strip() == "1"
    assert pair.reachable("a", ["b"])["b"]


SCHEDULE_THEN_WAIT = textwrap.dedent("""
    import sys, distem
    p = distem.Platform(state_dir=sys.argv[1], progress=False)
    print(p.id, flush=True)
    p.vnetwork("vnet", "10.144.0.0/24")
    p.vnode("x").image(sys.argv[2]).iface("if0", "vnet")
    p.vnode("y").image(sys.argv[2]).iface("if0", "vnet")
    p.deploy()
    for i in range(20):  # a change every 0.25 s for 5 s, a churn in the middle
        p.at(0.25 * i).latency("x", "if0", f"{i + 1}ms", direction="output")
    p.at(1).down("y")
    p.at(4).up("y")
    p.event_manager_start()
    print("started", flush=True)
    input()  # never reached in the test: the process is killed first
""")


def test_kill_9_mid_schedule_then_clean_ends_the_timeline_and_leaves_nothing(state_dir, busybox):
    controller = subprocess.Popen([sys.executable, "-c", SCHEDULE_THEN_WAIT, state_dir, busybox],
                                  stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    platform_id = controller.stdout.readline().strip()
    assert controller.stdout.readline().strip() == "started"
    time.sleep(1.5)
    os.kill(controller.pid, signal.SIGKILL)
    controller.wait()
    journal = Path(state_dir, "platforms", platform_id, "journal.jsonl").read_text().splitlines()
    pids = {json.loads(line)["add"]["pid"] for line in journal if '"kind": "process"' in line}
    assert platform_leftovers(platform_id, state_dir), "the kill must leave a platform to clean"

    out = subprocess.run([sys.executable, "-m", "distem.frontends.cli", "clean", "--platform", platform_id,
                          "--state-dir", state_dir], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    time.sleep(4)  # past every remaining instant: a timeline still firing would make links or cgroups again
    assert platform_leftovers(platform_id, state_dir) == []
    assert not [pid for pid in pids if Path(f"/proc/{pid}").exists()], "an agent or delay line survived the clean"


GOODPUT = 1448 / 1514  # TCP payload per Ethernet frame at MTU 1500 (as in test_links.py)


def test_a_bandwidth_trace_is_seen_by_iperf3_intervals(pair):
    """50 -> 10 Mbit/s on a's output at t = 2 s: what the receiver got in each second of iperf3's."""
    at_pnode = pair.sessions["local"]
    server = at_pnode.call("netns_spawn", name="b", argv=["iperf3", "-s", "-1", "-J", "-p", "5202"])
    deadline = time.monotonic() + 5
    while not at_pnode.call("wait_listening", names=["b"], port=5202)["b"] and time.monotonic() < deadline:
        time.sleep(0.05)
    pair.event_trace_add({"type": "viface", "vnodename": "a", "vifacename": "if0", "viface_direction": "output"},
                         "bandwidth", {0: 50, 2: 10})
    pair.event_manager_start()
    try:
        time.sleep(max(0.0, pair._events.epoch - time.time()))
        status, out, err = at_pnode.call("netns_run", name="a", timeout=30, argv=[
            "iperf3", "-c", "10.144.0.2", "-p", "5202", "-t", "5", "-i", "1", "-J", "--get-server-output"])
        events = pair.events_wait(timeout=10)
    finally:
        pair.event_manager_stop()
        at_pnode.call("process_end", pid=server, timeout=5)
    assert status == 0, err
    received = json.loads(out)["server_output_json"]["intervals"]  # the sender's first second counts its buffers
    intervals = [i["sum"]["bits_per_second"] / 1e6 for i in received]
    assert list(events.outcome) == ["ok", "ok"], events.message.tolist()
    # The first second holds TCP's start and the bucket's initial burst: the second one is the rate.
    assert intervals[1] == pytest.approx(50 * GOODPUT, rel=0.1), intervals
    assert intervals[3] == pytest.approx(10 * GOODPUT, rel=0.1), intervals  # 3-4 s; the last one is partial
    pair.voutput_update("a", "if0", {"bandwidth": None})
