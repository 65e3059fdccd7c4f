"""Vnetworks spanning pnodes (``local_cluster(3)``): VXLAN and classical, link limits and the
latency matrix across pnodes, measured; the pnodes' physical interfaces given back afterwards."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import distem
from distem.errors import ValidationError

from .test_events import STEP_MS, first_after, held, pings
from .test_matrix_measured import within

pytestmark = pytest.mark.root




def addresses(cluster, index: int) -> dict[str, list[str]]:
    """The IPv4 addresses of each interface of a pnode, as its kernel has them."""
    out = json.loads(cluster.run(index, ["ip", "-j", "-4", "addr"]).stdout)
    return {link["ifname"]: [a["local"] for a in link["addr_info"]] for link in out if link["ifname"] != "lo"}


@pytest.fixture(scope="module")
def spanning(cluster, busybox):
    """Vnodes t0-t2 on a VXLAN vnetwork and c0-c2 on a classical one, one of each per pnode."""
    before = [addresses(cluster, i) for i in range(3)]
    p = distem.Platform(cluster, progress=False)
    try:
        p.vnetwork("tunnel", "10.144.0.0/24", network_type="vxlan")
        p.vnetwork("flat", "10.145.0.0/24")
        for i, pnode in enumerate(cluster):
            p.vnode(f"t{i}").image(busybox).iface("if0", "tunnel").host(pnode.name)
            p.vnode(f"c{i}").image(busybox).iface("if0", "flat").host(pnode.name)
        p.deploy()
        yield p
    finally:
        p.close()
    assert [addresses(cluster, i) for i in range(3)] == before  # the uplinks gave the addresses back
    for i in range(3):
        assert f"d{p.id}" not in cluster.run(i, ["ip", "-o", "link"]).stdout


@pytest.mark.parametrize("group", ["t", "c"])
def test_vnodes_on_every_pnode_reach_each_other(spanning, group):
    names = [f"{group}{i}" for i in range(3)]
    assert len({spanning.model.vnode(n).host for n in names}) == 3
    for name in names:
        assert spanning.reachable(name, names) == {n: True for n in names if n != name}
    other = "c" if group == "t" else "t"
    assert not any(spanning.reachable(names[0], [f"{other}1"]).values())  # no route between the two vnetworks


def test_the_vxlan_vnetwork_leaves_room_for_its_header(spanning):
    assert spanning.vnetworks.loc["tunnel", "mtu"] == 1450 and spanning.vnetworks.loc["flat", "mtu"] == 1500
    assert spanning.check("t0", "cat /sys/class/net/if0/mtu").strip() == "1450"
    # A full-size frame crosses the tunnel whole: 1422 bytes of ICMP payload + 28 of headers = 1450.
    assert spanning.execute("ping -c 2 -W 2 -s 1422 10.144.0.2", ["t0"]).loc["t0", "status"] == 0


@pytest.mark.parametrize("group, frame", [("t", 1450 + 14), ("c", 1500 + 14)])
def test_a_rate_holds_across_pnodes(spanning, group, frame):
    source, destination = f"{group}0", f"{group}2"
    spanning.voutput_update(source, "if0", {"bandwidth": {"rate": "10mbps"}})
    try:
        got = spanning.measure_throughput(source, destination, seconds=4)["received_bps"]
    finally:
        spanning.voutput_update(source, "if0", {"bandwidth": None})
    goodput = (frame - 14 - 52) / frame  # TCP payload per frame (IPv4 + TCP with timestamps: 52 bytes)
    assert got == pytest.approx(10e6 * goodput, rel=0.05)


def test_a_latency_matrix_holds_across_pnodes(spanning):
    names = ["t0", "t1", "t2"]
    matrix = [[0, 20, 30], [20, 0, 40], [30, 40, 0]]  # within the acceptance test's 10-59 ms
    spanning.set_peers_latencies(names, matrix)
    try:
        compared = spanning.compare_latencies(names, count=10, interval_ms=50)
        assert len(compared) == 6
        within(spanning, compared)  # each pnode's delay line adds 0.1-1 ms when busy; such pairs are measured again
    finally:
        spanning.latencies = pd.DataFrame(0, index=names, columns=names)


def test_a_missing_root_interface_is_refused_before_any_change(spanning):
    with pytest.raises(ValidationError, match="root_interface.*ib0.*no such interface"):
        spanning.vnetwork("ib", "10.146.0.0/24", root_interface="ib0")
    assert "ib" not in spanning.model.vnetworks


def test_a_second_platform_cannot_bridge_the_interface_the_first_holds(spanning, cluster):
    """The first platform's classical vnetwork moved each pnode's address onto its bridge."""
    with distem.Platform(cluster, progress=False) as other:
        with pytest.raises(ValidationError, match="it is a bridge.*use network_type 'vxlan'"):
            other.vnetwork("flat", "10.148.0.0/24")
        assert other.model.vnetworks == {}
        other.vnetwork("tunnel", "10.148.0.0/24", network_type="vxlan")  # over the bridge's address: fine


def test_an_image_a_pnode_cannot_see_is_sent_to_it(cluster, busybox, tmp_path):
    """A tmpfs mounted in pnode 0's mount namespace hides the tarball's directory from it alone,
    as a remote pnode lacks this machine's files."""
    hidden = tmp_path / "images"
    hidden.mkdir()
    copy = hidden / "busybox-copy.tar.gz"
    copy.write_bytes(open(busybox, "rb").read() + b"\0" * 1024)  # another sha: not in any cache yet
    assert cluster.run(0, ["mount", "-t", "tmpfs", "tmpfs", str(hidden)]).returncode == 0
    try:
        assert cluster.run(0, ["test", "-e", str(copy)]).returncode != 0
        with distem.Platform(cluster, progress=False) as p:
            p.vnetwork("vnet", "10.147.0.0/24", network_type="vxlan")
            p.vnode("far").image(str(copy)).iface("if0", "vnet").host(cluster[0].name)
            p.deploy()
            assert p.check("far", "echo hello from the sent image").strip() == "hello from the sent image"
            sha = p._images.sha(str(copy))
            assert cluster.run(0, ["test", "-d", f"{cluster[0].state_dir}/images/{sha}/rootfs"]).returncode == 0
    finally:
        cluster.run(0, ["umount", str(hidden)])


def test_a_gateway_joins_the_two_vnetworks_across_pnodes(spanning, busybox, cluster):
    spanning.vnode("gw").image(busybox).iface("if0", "tunnel").iface("if1", "flat").host(cluster[1].name)
    spanning.deploy()
    try:
        spanning.vnode_mode("gw", gateway=True)
        spanning.vroute_complete()  # live: t0 (pnode 0) to c2 (pnode 2) through gw (pnode 1)
        assert spanning.reachable("t0", ["c2"]) == {"c2": True}
        assert spanning.reachable("c2", ["t0"]) == {"t0": True}
    finally:
        spanning.vnode_remove("gw")
    assert spanning.reachable("t0", ["c2"]) == {"c2": False}


def test_events_on_three_pnodes_start_together(spanning):
    """One instant, a change on each pnode: t0 pings t1 and t2 every 10 ms; both steps land at 1 s."""
    spanning.ping("t0", "t1", count=20), spanning.ping("t0", "t2", count=20)  # ARP resolved
    spanning.at(1).latency("t1", "if0", "20ms", direction="output").latency("t2", "if0", "30ms", direction="output")
    spanning.at(1).latency("t0", "if0", "5ms", direction="output")
    spanning.event_manager_start()
    try:
        replies = pings(spanning, "t0", ["10.144.0.2", "10.144.0.3"], 2.5)
        events = spanning.events_wait(timeout=10)
    finally:
        spanning.event_manager_stop()
        for name in ("t0", "t1", "t2"):
            spanning.voutput_update(name, "if0", {"latency": "0ms"})
    assert sorted(events.pnodes) == sorted(pnode.name for pnode in spanning.model.pnodes.values())
    assert set(events.attrs["clock_offsets_ms"]) == set(events.pnodes)
    assert (events.outcome == "ok").all() and (events.skew_ms.abs() < STEP_MS).all(), events
    assert events.applied_s.max() - events.applied_s.min() < STEP_MS / 1000
    for address, rtt in (("10.144.0.2", 25), ("10.144.0.3", 35)):
        step = first_after(replies[address], 0, lambda ms, rtt=rtt: ms > rtt - 2)
        assert abs(step - 1) < STEP_MS / 1000, (address, step)
        assert held(replies[address], 1.2, 2.5) == pytest.approx(rtt, abs=1)
