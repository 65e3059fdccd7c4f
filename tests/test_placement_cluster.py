"""The seed's Alevin walkthrough on three real pnodes (local_cluster(3)): place, deploy, measure.

The seed's six vnodes, with its names and the ratios of its rates, scaled to this machine: its
3000/1000/4000 Mbit/s become 30/10/40 (iperf3 can measure them here), and each vnode asks one core
(the seed's 1-3 cores add up to 10; these pnodes have 2 each).
"""

from __future__ import annotations

import os
import subprocess

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


# The seed's section 5.3 list: names, rates (3000/1000/4000 Mbit/s scaled to 30/10/40, as above) and one
# core each: the seed's 1, 2, 1, 3, 2, 1 add up to 10, these three pnodes have 2 each.
SEED = [("node0", "30mbps", 1), ("node1", "10mbps", 1), ("node2", "30mbps", 1), ("node3", "10mbps", 1),
        ("node4", "40mbps", 1), ("node5", "10mbps", 1)]


def containers(p) -> dict[str, list[str]]:
    """The containers made on each pnode of the platform (its lxcpath there)."""
    from distem.plan import PnodePaths

    out = {}
    for name, pnode in p.model.pnodes.items():
        path = PnodePaths(pnode.state_dir, p.id).lxcpath
        out[name] = sorted(os.listdir(path)) if os.path.isdir(path) else []
    return out


def seed_script(p, image: str, vnodes: list[tuple[str, str, int]], ssh_keys: dict[str, str]) -> None:
    """The seed's script up to run_alevin, line by line: vnode_create with its output rate and the ssh
    keys, then vcpu_create(name, 1, 'ratio', cpu)."""
    p.vnetwork_create("testnet", "10.144.0.0/22")
    for name, rate, cpu in vnodes:
        p.vnode_create(name, {"vfilesystem": {"image": image, "shared": True},
                              "vifaces": [{"name": "if0", "vnetwork": "testnet",
                                           "output": {"bandwidth": {"rate": rate}}}]}, ssh_keys)
        if cpu > 0:
            p.vcpu_create(name, 1, "ratio", cpu)


@pytest.fixture(scope="module")
def ssh_keys(tmp_path_factory):
    key = tmp_path_factory.mktemp("ssh") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return {"private": key.read_text(), "public": key.with_suffix(".pub").read_text()}


def test_the_seeds_script_line_by_line_maps_the_vnodes_it_created(cluster, busybox, ssh_keys):
    """Created in the seed's order, the vnodes sit two per pnode, one after the other: node1 and node4
    send 50 Mbit/s together, and 4/5 of it leaves their pnode (the others are elsewhere), more than its
    36 Mbit/s uplink. run_alevin moves them before anything is made; they start where mapped."""
    uplinks = (100, 36, 36)
    with distem.Platform(cluster, progress=False) as p:
        seed_script(p, busybox, SEED, ssh_keys)
        assert p.model.provisional == {name for name, _, _ in SEED}
        assert containers(p) == {pnode.name: [] for pnode in cluster}  # nothing made yet
        before = p.vnodes["host"].to_dict()
        assert before["node1"] == before["node4"] != cluster[0].name  # creation order: does not fit

        p.load_physical_topo(topology(cluster, uplinks))
        view = p.run_alevin()
        assert view.moved and set(view.moved) <= set(before)
        assert view.hosts["node4"] == cluster[0].name  # the biggest sender on the biggest uplink
        assert (view.links["load_mbps"] <= view.links["capacity_mbps"]).all()
        assert view.vnodes.loc[next(iter(view.moved)), "moved_from"] == view.moved[next(iter(view.moved))][0]

        p.vnodes_start([name for name, _, _ in SEED])
        assert p.wait_vnodes({"timeout": 60, "port": None})
        assert p.vnodes["host"].to_dict() == view.hosts and set(p.vnodes["status"]) == {"RUNNING"}
        made = containers(p)
        for pnode in cluster:
            assert len(made[pnode.name]) == sum(1 for h in view.hosts.values() if h == pnode.name)
        for name, r, cpu in SEED:
            assert p.voutput_info(name, "if0") == {"bandwidth": {"rate": r.replace("mbps", "mbit")}}
            assert len(p.vcpu_info(name)["cores"]) == cpu
        far = next(n for n, h in view.hosts.items() if h != view.hosts["node4"])
        got = p.measure_throughput("node4", far, seconds=4)["received_bps"]
        assert got == pytest.approx(40e6 * GOODPUT, rel=0.05)


def test_the_seeds_script_with_too_many_vnodes_fails_before_anything_starts(cluster, busybox, ssh_keys):
    """The seed's "many virtual nodes with constraints that cannot be fulfilled": six vnodes of 30 Mbit/s
    on uplinks of 100, 36 and 36 Mbit/s: two on a 36 Mbit/s uplink send 48."""
    many = [(f"node{i}", "30mbps", 1) for i in range(6)]
    with distem.Platform(cluster, progress=False) as p:
        seed_script(p, busybox, many, ssh_keys)
        p.load_physical_topo(topology(cluster, (100, 36, 36)))
        with pytest.raises(MappingError) as err:
            p.run_alevin()
        assert err.value.vnodes and "bandwidth on link" in str(err.value)
        assert set(p.vnodes["status"]) == {"READY"} and containers(p) == {pnode.name: [] for pnode in cluster}
