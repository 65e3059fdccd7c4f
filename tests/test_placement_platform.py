"""Placement on a real platform (this machine, one pnode): place, then deploy; MappingError deploys nothing."""

from __future__ import annotations

import pytest

from distem.errors import MappingError, ValidationError

pytestmark = pytest.mark.root

VNODES_LIST = """\
- name: node0
  bandwidth: "300mbps"
  cpu: 0
- name: node1
  bandwidth: "100mbps"
  cpu: 0
- name: node2
  bandwidth: "200mbps"
  cpu: 0
"""
ONE_PNODE = 'graph G { here [ip="127.0.0.1", cpu=16, type=host]; }'


def test_the_default_topology_is_this_pnode_with_its_facts(platform):
    topo = platform.physical_topology
    facts = platform.sessions["local"].facts
    assert dict(topo.nodes(data=True)) == {"local": {"kind": "pnode", "ip": None, "cores": facts["cores"],
                                                     "memory_bytes": facts["memory"]}}


def test_a_topology_pnode_must_be_a_platform_pnode(platform):
    with pytest.raises(ValidationError, match=r"matches no pnode of the platform \(known: local \(127.0.0.1"):
        platform.load_physical_topo('graph G { far [ip="10.9.9.9", cpu=4, type=host]; }')
    assert platform.load_physical_topo(ONE_PNODE).nodes["local"]["cores"] == 16


def test_run_alevin_places_everything_here_then_deploy_follows(platform, busybox, tmp_path):
    listing = tmp_path / "vnodes_list.yml"
    listing.write_text(VNODES_LIST)
    platform.vnetwork("testnet", "10.144.0.0/24")
    handles = platform.vnodes_from_yaml(listing, image=busybox)
    platform.load_physical_topo(ONE_PNODE)
    view = platform.run_alevin()
    assert view.hosts == {"node0": "local", "node1": "local", "node2": "local"}
    assert list(view.vnodes["host"]) == ["local"] * 3 and view.vnodes["output_mbps"].tolist() == [300, 100, 200]
    assert all(h._desc["host"] == "local" for h in handles)
    assert platform.model.vnodes == {}  # placed, not created
    assert "placement of 3 vnodes" in view._repr_html_()

    assert sorted(platform.deploy()) == ["node0", "node1", "node2"]
    assert set(platform.vnodes["host"]) == {"local"} and set(platform.vnodes["status"]) == {"RUNNING"}
    assert platform.vifaces.loc[("node0", "if0"), "output"] == "300mbit"

    platform.vnode("node3").image(busybox).iface("if0", "testnet", output={"bandwidth": "50mbps"})
    again = platform.place()  # the created vnodes count where they are
    assert again.hosts["node3"] == "local" and again.pnodes.loc["local", "cores"] == 4
    assert again.vnodes.loc["node0", "created"] and not again.vnodes.loc["node3", "created"]

    dot = tmp_path / "vnodes.dot"
    platform.vnodes_to_dot(dot)
    text = dot.read_text()
    assert "node0 -- vs [bandwidth=300000000];" in text and "node3 -- vs [bandwidth=50000000];" in text


def test_no_room_raises_before_anything_is_deployed(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    cores = platform.sessions["local"].facts["cores"]
    for i in range(cores + 1):  # one core each without a vcpu: one too many for this pnode
        platform.vnode(f"n{i}").image(busybox).iface("if0", "vnet")
    with pytest.raises(MappingError) as err:
        platform.place()
    assert len(err.value.vnodes) == 1
    assert err.value.reasons[err.value.vnodes[0]] == ["cores on pnode local (needs 1, 0 left)"]
    assert platform.model.vnodes == {} and platform.placement is None
    assert not any("host" in h._desc for h in platform._vnodes.pending.values())
    assert len(platform._vnodes.pending) == cores + 1


def test_place_chooses_again_what_it_chose_but_keeps_what_was_given(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    platform.vnode("a").image(busybox).iface("if0", "vnet")
    platform.vnode("b").image(busybox).iface("if0", "vnet").host("local")
    platform.load_physical_topo(ONE_PNODE)
    assert platform.place().vnodes["pinned"].to_dict() == {"a": False, "b": True}
    assert platform.place().vnodes["pinned"].to_dict() == {"a": False, "b": True}


def test_descriptions_given_to_place_are_created_where_placed(platform, busybox):
    platform.vnetwork("vnet", "10.144.0.0/24")
    desc = {"vfilesystem": {"image": busybox}, "vifaces": [{"name": "if0", "vnetwork": "vnet"}]}
    assert platform.place({"x": desc}).hosts == {"x": "local"} and desc["host"] == "local"
    assert platform.vnode_create("x", desc)["host"] == "local"
