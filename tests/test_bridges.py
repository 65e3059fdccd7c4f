"""A vnetwork past a bridge's 1,024 ports: more bridges on the pnode, joined to the first by trunks, one L2
segment. Exercised with a bridge of two ports (PORTS_PER_BRIDGE lowered for the test); the 1,100-vnode
run is benchmarks/scale.py's."""

from __future__ import annotations

import pytest

import distem.model.names as names

from .conftest import platform_leftovers

pytestmark = pytest.mark.root


def test_vnodes_past_a_bridge_s_ports_join_more_bridges_and_still_reach_each_other(monkeypatch, state_dir, busybox):
    monkeypatch.setattr(names, "PORTS_PER_BRIDGE", 2)
    import distem

    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        p.vnetwork("vnet", "10.172.0.0/24")
        for i in range(5):
            p.vnode(f"n{i}").image(busybox, shared=True).iface("if0", "vnet", output={"bandwidth": "50mbps"})
        p.deploy()
        bridges = p.vifaces["bridge"].tolist()
        assert len(set(bridges)) == 3 and bridges[0] == bridges[1] != bridges[2] == bridges[3] != bridges[4]
        assert all(p.reachable("n0").values()) and all(p.reachable("n4").values())
        p.vnode("n5").image(busybox, shared=True).iface("if0", "vnet")  # a later batch finds its bridge made
        p.deploy()
        assert p.vifaces.loc[("n5", "if0"), "bridge"] == bridges[4] and all(p.reachable("n5").values())
        p.vnodes_remove()
        p.vnetwork_remove("vnet")
        assert not [n for n in __import__("os").listdir("/sys/class/net") if n.startswith(f"d{p.id}")]
    finally:
        p.close()
    assert platform_leftovers(p.id, state_dir) == []
