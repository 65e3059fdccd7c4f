"""Distem's viface_create / viface_remove on vnodes that exist (running or not), vfilesystem_image and
vnodes_update, on busybox vnodes of this host."""

from __future__ import annotations

import json

import pytest

from distem.errors import AlreadyExistsError, NotFoundError

pytestmark = pytest.mark.root
GOODPUT = 1448 / 1514


def links_of(p, vnode: str) -> list[str]:
    return [line.split(": ")[1].split("@")[0] for line in p.vnode_execute(vnode, "ip -o link").splitlines()]


@pytest.fixture
def two(platform, busybox):
    platform.vnetwork("lan", "10.162.0.0/24")
    platform.vnetwork("backbone", "10.163.0.0/24")
    platform.vnode("a").image(busybox).iface("if0", "lan")
    platform.vnode("b").image(busybox).iface("if0", "lan").iface("if1", "backbone")
    platform.deploy()
    return platform


def test_an_interface_added_to_a_running_vnode_works_at_once_with_its_limits(two):
    p = two
    info = p.viface_create("a", "if1", {"vnetwork": "backbone", "output": {"bandwidth": {"rate": "10mbps"}}})
    assert info["address"] == "10.163.0.2/24"
    assert "10.163.0.2/24" in p.vnode_execute("a", "ip -4 addr show if1")
    assert p.vnode_execute("b", "ping -c 2 -W 2 a-if1 >/dev/null && echo reached").strip() == "reached"
    got = p.measure_throughput("a", "b", seconds=4)  # a's first interface: lan, unshaped
    assert got["received_bps"] > 50e6
    p.viface_update("a", "if0", {"output": {"bandwidth": {"rate": "10mbps"}}})  # the old one still shapes
    assert p.measure_throughput("a", "b", seconds=4)["received_bps"] == pytest.approx(10e6 * GOODPUT, rel=0.1)
    with pytest.raises(AlreadyExistsError):
        p.viface_create("a", "if1", {"vnetwork": "backbone"})
    p.vnode_stop("a")
    p.vnode_start("a")  # from its config now
    assert "10.163.0.2/24" in p.vnode_execute("a", "ip -4 addr show if1")


def test_limits_on_an_added_interface_hold(two):
    p = two
    p.viface_create("a", "if1", {"vnetwork": "backbone", "output": {"bandwidth": {"rate": "10mbps"}}})
    assert "started" in p.host_execute("b", ["sh", "-c", "iperf3 -s -1 -D -p 5299 && echo started"])
    out = p.host_execute("a", ["iperf3", "-c", "10.163.0.1", "-p", "5299", "-t", "4", "-J"])  # to b's if1
    received = json.loads(out)["end"]["sum_received"]["bits_per_second"]
    assert received == pytest.approx(10e6 * GOODPUT, rel=0.1)


def test_an_interface_removed_from_a_running_vnode_goes(two):
    p = two
    p.viface_remove("b", "if1")
    assert links_of(p, "b") == ["lo", "if0"]
    assert "b-if1" not in p.vnode_execute("a", "cat /etc/hosts")
    with pytest.raises(NotFoundError):
        p.viface_info("b", "if1")
    p.vnode_stop("b")
    p.vnode_start("b")
    assert links_of(p, "b") == ["lo", "if0"] and "10.162.0.2" in p.vnode_execute("b", "ip addr")


def test_an_interface_added_before_the_start(platform, busybox):
    platform.vnetwork("lan", "10.162.0.0/24")
    platform.vnode("c").image(busybox).iface("if0", "lan")
    platform.deploy(start=False)
    platform.viface_create("c", "if1", {"vnetwork": "lan", "address": "10.162.0.50/24"})
    platform.vnode_start("c")
    assert "10.162.0.50/24" in platform.vnode_execute("c", "ip -4 addr show if1")


def test_a_vnode_s_filesystem_as_an_image(two, tmp_path, busybox):
    p = two
    p.vnode_execute("a", "echo made in a > /root/note")
    image = p.vfilesystem_image("a", tmp_path / "a.tar.gz")
    p.vnode("c").image(image).iface("if0", "lan")
    p.deploy()
    assert p.vnode_execute("c", "cat /root/note") == "made in a\n"
    assert p.vnode_execute("c", "ls /proc | head -1")  # a live /proc, not a copy of a's


def test_vnodes_update_changes_each(two):
    p = two
    p.vnodes_update(["a", "b"], {"vcpu": {"corenb": 1, "val": 0.5, "unit": "ratio"}})
    assert p.vcpu_info("a")["val"] == p.vcpu_info("b")["val"] == 0.5
