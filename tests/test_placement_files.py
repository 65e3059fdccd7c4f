"""Placement without a platform: topology and vnode files in, the result as DataFrames and Figures."""

from __future__ import annotations

import networkx as nx
import pytest
from matplotlib.figure import Figure

import distem
from distem.errors import MappingError, ValidationError

from .test_placement import DISTEM_DOT

SEED_YAML = """\
- name: node0
  bandwidth: "3000mbps"
  cpu: 1
- name: node1
  bandwidth: "1000mbps"
  cpu: 2
- name: node2
  bandwidth: "3000mbps"
  cpu: 1
- name: node3
  bandwidth: "1000mbps"
  cpu: 3
- name: node4
  bandwidth: "4000mbps"
  cpu: 2
- name: node5
  bandwidth: "1000mbps"
  cpu: 1
"""
TOPO_YAML = """\
pnodes:
  - {name: pnode1, ip: 172.16.0.1, cpu: 8}
  - {name: pnode2, ip: 172.16.0.2, cpu: 8}
switches: [physwitch]
links:
  - {source: pnode1, target: physwitch, bandwidth: 1gbps}
  - {source: pnode2, target: physwitch, bandwidth: 10gbps}
"""


@pytest.fixture
def files(tmp_path):
    (tmp_path / "topo.dot").write_text(DISTEM_DOT)
    (tmp_path / "topo.yml").write_text(TOPO_YAML)
    (tmp_path / "vnodes_list.yml").write_text(SEED_YAML)
    return tmp_path


def test_every_source_of_a_topology_gives_the_same_graph(files):
    expected = distem.load_physical_topo(files / "topo.dot")
    import yaml

    for source in (str(files / "topo.yml"), DISTEM_DOT, yaml.safe_load(TOPO_YAML), nx.Graph(expected)):
        topo = distem.load_physical_topo(source)
        assert list(topo.nodes(data=True)) == list(expected.nodes(data=True))
        assert list(topo.edges(data=True)) == list(expected.edges(data=True))


def test_unreadable_or_malformed_files_are_validation_errors(files):
    with pytest.raises(ValidationError, match="cannot be read"):
        distem.load_physical_topo(files / "missing.dot")
    (files / "bad.yml").write_text("pnodes: [unclosed")
    with pytest.raises(ValidationError, match="not valid YAML"):
        distem.load_physical_topo(files / "bad.yml")
    with pytest.raises(ValidationError, match="expected a DOT"):
        distem.load_physical_topo(42)


def test_the_seed_walkthrough_without_a_platform(files):
    vnodes = distem.load_vnodes_yaml(files / "vnodes_list.yml", image="/images/jessie-mpich-lxc.tar.gz")
    assert list(vnodes) == [f"node{i}" for i in range(6)]
    with pytest.raises(MappingError) as err:  # 16 cores for 10, but pnode1's 1 Gbit/s link is too thin
        distem.place(vnodes, files / "topo.dot")
    assert "pnode1" in str(err.value) or "pnode2" in str(err.value)
    topo = distem.load_physical_topo(files / "topo.dot")
    topo.edges["pnode1", "physwitch"]["capacity_bps"] = 10**10
    view = distem.place(vnodes, topo)
    assert view.placement.optimal and set(view.hosts) == set(vnodes)
    assert {name: desc["host"] for name, desc in vnodes.items()} == view.hosts
    assert list(view.pnodes.columns) == ["vnodes", "cores", "cores_max", "memory_mib", "memory_max_mib"]
    assert view.links.loc[("pnode1", "physwitch"), "capacity_mbps"] == 10_000
    assert repr(view).startswith("<placement of 6 vnodes on ")


def test_pictures_are_figures(files):
    vnodes = distem.load_vnodes_yaml(files / "vnodes_list.yml", image="/img.tgz")
    topo = distem.load_physical_topo(files / "topo.dot")
    topo.edges["pnode1", "physwitch"]["capacity_bps"] = 10**10
    for figure in (distem.plot_physical_topology(files / "topo.dot"), distem.plot_virtual_topology(vnodes),
                   distem.place(vnodes, topo).plot()):
        assert isinstance(figure, Figure) and figure.axes[0].get_title()


def test_placing_needs_no_image(files):
    vnodes = distem.load_vnodes_yaml(files / "vnodes_list.yml")  # one call, the image chosen later
    assert vnodes["node0"]["vfilesystem"] == {"shared": True}
    view = distem.place(vnodes, {"pnodes": [{"name": "big", "cpu": 16}]})
    assert set(view.hosts.values()) == {"big"} and vnodes["node0"]["host"] == "big"
