"""The seed's Alevin walkthrough on three real pnodes (local_cluster(3)): place, deploy, measure.

The seed's six vnodes, with its names and the ratios of its rates, scaled to this machine: its
3000/1000/4000 Mbit/s become 30/10/40 (iperf3 can measure them here), and each vnode asks one core
(the seed's 1-3 cores add up to 10; these pnodes have 2 each).
"""

from __future__ import annotations


import pytest

import distem
from distem.errors import MappingError

pytestmark = pytest.mark.root

VNODES_LIST = """\
- {name: node0, bandwidth: "30mbps", cpu: 1}
- {name: node1, bandwidth: "10mbps", cpu: 1}
- {name: node2, bandwidth: "30mbps", cpu: 1}
- {name: node3, bandwidth: "10mbps", cpu: 1}
- {name: node4, bandwidth: "40mbps", cpu: 1}
- {name: node5, bandwidth: "10mbps", cpu: 1}
"""
GOODPUT = 1448 / 1514




def topology(cluster, uplinks_mbps: tuple[int, ...]) -> dict:
    """The pnodes (2 cores each) on one switch, each by a link of the given capacity."""
    addresses = [p.spec.split("@", 1)[1].split("//")[0] for p in cluster]
    return {"pnodes": [{"name": f"pn{i}", "ip": a, "cpu": 2} for i, a in enumerate(addresses)],
            "switches": ["switch"],
            "links": [{"source": f"pn{i}", "target": "switch", "bandwidth": f"{c}mbps"}
                      for i, c in enumerate(uplinks_mbps)]}


def test_the_walkthrough_maps_deploys_and_holds(cluster, busybox, tmp_path):
    listing = tmp_path / "vnodes_list.yml"
    listing.write_text(VNODES_LIST)
    with distem.Platform(cluster, progress=False) as p:
        p.vnetwork("testnet", "10.144.0.0/24")
        p.vnodes_from_yaml(listing, image=busybox)
        # In name order, two per pnode, node4's 40 Mbit/s would cross a 36 Mbit/s uplink: the mapping
        # must give the biggest sender the 100 Mbit/s one.
        p.load_physical_topo(topology(cluster, (100, 36, 36)))
        hosts = p.run_alevin().hosts
        assert hosts["node4"] == cluster[0].name
        p.deploy()
        assert p.vnodes["host"].to_dict() == hosts
        for pnode in cluster:
            here = [n for n, h in hosts.items() if h == pnode.name]
            assert sorted(core for n in here for core in p.vcpu_info(n)["cores"]) == [0, 1]  # a core each
        far = next(n for n, h in hosts.items() if h != cluster[0].name)
        got = p.measure_throughput("node4", far, seconds=4)["received_bps"]
        assert got == pytest.approx(40e6 * GOODPUT, rel=0.05)
        assert p.vifaces.loc[("node1", "if0"), "output"] == "10mbit"


def test_what_cannot_fit_is_refused_before_anything_is_deployed(cluster, busybox, tmp_path):
    listing = tmp_path / "vnodes_list.yml"
    listing.write_text(VNODES_LIST)
    with distem.Platform(cluster, progress=False) as p:
        p.vnetwork("testnet", "10.144.0.0/24")
        p.vnodes_from_yaml(listing, image=busybox)
        p.load_physical_topo(topology(cluster, (100, 33, 33)))
        with pytest.raises(MappingError) as err:
            p.run_alevin()
        assert err.value.vnodes and "bandwidth on link" in str(err.value)
        assert p.model.vnodes == {}
