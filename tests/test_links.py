"""Link limits on this host's kernel (htb, ifb; no netem): measured with iperf3 from the vnodes' namespaces."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

import distem
from distem.errors import ValidationError

from .conftest import pnode_snapshot

pytestmark = pytest.mark.root

GOODPUT = 1448 / 1514  # TCP payload per Ethernet frame at MTU 1500 (timestamps on)


@pytest.fixture(scope="module")
def pair(state_dir, busybox):
    """Two vnodes; the tests change their limits live."""
    image = busybox
    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        p.vnetwork("vnet", "10.144.0.0/24")
        p.vnode("a").image(image).iface("if0", "vnet")
        p.vnode("b").image(image).iface("if0", "vnet")
        p.deploy()
        yield p
    finally:
        p.close()


@pytest.mark.parametrize("direction", ["output", "input"])
@pytest.mark.parametrize("mbit", [1, 10, 100, 1000])
def test_bandwidth_holds_within_5_percent(pair, direction, mbit):
    """a's output limits a->b; b's input limits a->b too (shaped on b's host-side veth)."""
    limited = "a" if direction == "output" else "b"
    pair.viface_update(limited, "if0", {direction: {"bandwidth": {"rate": f"{mbit}mbps"}}})
    try:
        got = pair.measure_throughput("a", "b", seconds=4)["received_bps"]
    finally:
        pair.viface_update(limited, "if0", {direction: {"bandwidth": None}})
    assert got == pytest.approx(mbit * 1e6 * GOODPUT, rel=0.05)


def test_a_live_change_takes_effect_on_the_same_connection(pair):
    pair.voutput_update("a", "if0", {"bandwidth": "10mbps"})
    result = {}
    run = threading.Thread(target=lambda: result.update(pair.measure_throughput("a", "b", seconds=6)))
    run.start()
    time.sleep(3)
    pair.vnode("a").limit("if0", output={"bandwidth": "100mbps"})
    run.join()
    pair.voutput_update("a", "if0", {"bandwidth": None})
    per_second = [bps / 1e6 for bps in result["intervals_bps"]][:6]  # a 7th, partial interval may follow
    before, after = statistics.median(per_second[:3]), statistics.median(per_second[4:])
    assert before == pytest.approx(10 * GOODPUT, rel=0.1), per_second
    assert after == pytest.approx(100 * GOODPUT, rel=0.1), per_second


def test_unrelated_limits_survive_a_change(pair):
    pair.voutput_update("a", "if0", {"bandwidth": "20mbps"})
    pair.vinput_update("a", "if0", {"bandwidth": "5mbps"})
    assert pair.voutput_info("a", "if0") == {"bandwidth": {"rate": "20mbit"}}
    assert pair.measure_throughput("a", "b", seconds=3)["received_bps"] == pytest.approx(20e6 * GOODPUT, rel=0.05)
    pair.viface_update("a", "if0", {"output": {"bandwidth": None}, "input": {"bandwidth": None}})
    assert pair.vifaces.loc[("a", "if0"), "output"] == ""


@pytest.mark.parametrize("limits, words", [
    ({"bandwidth": {"rate": "-10mbps"}}, "expected a rate"),
    ({"bandwidth": "10 parsecs"}, "unknown rate unit"),
    ({"loss": {"percent": 120}}, "between 0 and 100"),
    ({"latency": {"jitter": "5ms"}}, "jitter needs a delay"),
    ({"speed": "fast"}, "unknown property"),
    ({"bandwith": "10mbps"}, "unknown property; did you mean 'bandwidth'"),
    ({"latency": {"dealy": "5ms"}}, "unknown key; did you mean 'delay'"),
])
def test_bad_limits_raise_before_anything_changes(pair, limits, words):
    before = pnode_snapshot(pair.sessions["local"].pnode.state_dir)
    with pytest.raises(ValidationError, match=words):
        pair.voutput_update("a", "if0", limits)
    with pytest.raises(ValidationError, match=words):
        pair.vnode_create("c", {"vfilesystem": {"image": pair.model.vnode("a").filesystem.image},
                                "vifaces": [{"name": "if0", "vnetwork": "vnet", "input": limits}]})
    assert pnode_snapshot(pair.sessions["local"].pnode.state_dir) == before
