"""Several pnodes on one machine (``distem.testing.local_cluster``): real namespaces, sshd and gateways.

Vnetworks across pnodes (VXLAN, classical) are measured in test_vnetworks_across.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

import distem
from distem.errors import AgentError, ValidationError
from distem.frontends import cli
from distem.model import PlatformModel, PNode, parse_cidr, parse_vnode
from distem.plan.neighbours import neighbour_room
from distem.platform.pnodes import as_pnode, parse_nodefile, read_nodefile
from distem.testing.cluster import local_cluster

from .conftest import cluster_leftovers, platform_leftovers


# -- without root: node files, pnode specs, placement --------------------------------------------
def test_nodefile_lines_collapse_in_order(tmp_path, monkeypatch):
    text = "node-2.site\nnode-2.site\nnode-1.site\n\nnode-2.site\nnode-3.site\n"
    assert parse_nodefile(text) == ["node-2.site", "node-1.site", "node-3.site"]
    path = tmp_path / "nodes"
    path.write_text(text)
    monkeypatch.setenv("OAR_NODEFILE", str(path))
    assert read_nodefile() == ["node-2.site", "node-1.site", "node-3.site"]
    monkeypatch.delenv("OAR_NODEFILE")
    with pytest.raises(ValidationError, match="OAR_NODEFILE"):
        read_nodefile()
    with pytest.raises(ValidationError, match="cannot read"):
        read_nodefile(str(tmp_path / "missing"))
    (tmp_path / "empty").write_text("\n\n")
    with pytest.raises(ValidationError, match="no host"):
        read_nodefile(str(tmp_path / "empty"))


def test_pnodes_from_specs_and_host_names():
    host = as_pnode("node-1.site", "/s", None, "/cfg")
    assert (host.name, host.spec) == ("node-1.site", "ssh=root@node-1.site//ssh_config=/cfg//python=/s/venv/bin/python3")
    assert as_pnode("me@10.0.0.2", "/s", None).spec == "ssh=me@10.0.0.2//python=/s/venv/bin/python3"
    spec = as_pnode("ssh=root@10.0.0.3//python=python3", "/s", None, "/cfg")
    assert (spec.name, spec.spec) == ("10.0.0.3", "ssh=root@10.0.0.3//python=python3//ssh_config=/cfg")
    assert as_pnode("popen", "/s", None).name == "local"
    given = PNode(name="x", spec="popen", cgroup_parent="x")
    assert as_pnode(given, "/s", None) is given
    for bad in ("two words", "socket=1.2.3.4:8888", ""):
        with pytest.raises(ValidationError):
            as_pnode(bad, "/s", None)
    with pytest.raises(ValidationError, match="ssh_config"):
        distem.Platform(["node-1"], ssh_config="/no/such/file")
    with pytest.raises(ValidationError, match="cgroup_parent"):
        PlatformModel("a1b2c3", [PNode(name="p", cgroup_parent="../up")])


def test_each_pnode_gets_room_for_its_vnodes_arp_entries_and_a_broadcast_s_copies():
    model = PlatformModel("a1b2c3", [PNode(name="a"), PNode(name="b")])
    model.add_vnetwork("lan", parse_cidr("cidr", "10.0.0.0/24"))
    model.add_vnetwork("wan", parse_cidr("cidr", "10.1.0.0/24"))
    for name, host, nets in [("x", "a", ["lan"]), ("y", "a", ["lan", "wan"]), ("z", "b", ["lan"]), ("w", "b", ["wan"])]:
        model.add_vnodes([parse_vnode(name, {"host": host, "vfilesystem": {"image": "/i.tgz"},
                                             "vifaces": [{"name": f"if{k}", "vnetwork": n} for k, n in enumerate(nets)]})])
    # lan has 3 members, wan 2: on a, x holds 3 entries and y 3 + 2; a's largest vnetwork there has 2 ports
    assert neighbour_room(model.vnodes.values()) == {"a": (8, 2), "b": (5, 1)}


def test_unpinned_vnodes_go_where_most_cores_and_memory_are_free():
    pnodes = [PNode(name=n, cores=c, memory=m, cgroups={"memory": 1}) for n, c, m in (("b", 2, 8 << 30), ("a", 2, 8 << 30), ("c", 4, 4 << 30))]
    model = PlatformModel("a1b2c3", pnodes)

    def add(name: str, desc: dict | None = None) -> str:
        desc = {"vfilesystem": {"image": "/i.tgz"}, **(desc or {})}
        return model.add_vnodes([parse_vnode(name, desc)])[0].host

    # c has 4 free cores; then a and b tie with c at 2 (a then b by name at equal memory, c has less).
    assert [add(f"n{i}") for i in range(5)] == ["c", "c", "a", "b", "c"]
    assert add("pinned", {"host": "b"}) == "b"
    assert add("big", {"vmem": {"mem": 1024}}) == "a"  # a: 1 core free, b: 0, c: 1 but less memory


# -- a real cluster ---------------------------------------------------------------------------


def _left_on(cluster, p, index: int) -> list[str]:
    pnode = cluster[index]
    left = platform_leftovers(p.id, pnode.state_dir, pnode.cgroup_parent)
    links = cluster.run(index, ["ip", "-o", "link"]).stdout
    return left + [f"link in {pnode.name}: {line.split(':')[1].strip()}" for line in links.splitlines()
                   if f"d{p.id}" in line]


def _deploy(p, busybox: str, count: int) -> list[str]:
    p.vnetwork("vnet", "10.144.0.0/24")
    for i in range(count):
        p.vnode(f"n{i}").image(busybox).iface("if0", "vnet")
    return p.deploy()


@pytest.mark.root
def test_each_pnode_answers_from_its_own_namespace(cluster):
    with distem.Platform(cluster, progress=False) as p:
        frame = p.pnodes
        assert list(frame.index) == [pnode.name for pnode in cluster]
        assert list(frame["hostname"]) == [pnode.name for pnode in cluster]
        assert list(frame["address"]) == [m.address for m in cluster.members]
        assert set(frame["state"]) == {"connected"}
        assert len({s.agent_pid for s in p.sessions.values()}) == 3
        assert all(p.model.pnodes[n.name].memory for n in cluster)


@pytest.mark.root
def test_vnodes_deploy_and_talk_on_each_pnode(cluster, busybox):
    with distem.Platform(cluster, progress=False) as p:
        names = _deploy(p, busybox, 6)
        hosts = p.vnodes["host"]
        assert [hosts[n] for n in names] == [cluster[i % 3].name for i in range(6)]  # spread, deterministic
        for name in names:
            pnode = p.model.pnodes[hosts[name]]
            group = f"/sys/fs/cgroup/pids/{pnode.cgroup_parent}/distem-{p.id}/vnode-{name}"
            assert os.path.isdir(group), group  # under its own pnode's parent
            # A classical vnetwork spans the pnodes: their physical interfaces are ports of its bridges.
            assert {n for n, ok in p.reachable(name).items() if ok} == set(names) - {name}
        assert list(p.pnodes["vnodes"]) == [2, 2, 2]
    for i in range(3):
        assert _left_on(cluster, p, i) == []


@pytest.mark.root
def test_a_pnode_in_a_namespace_leaves_the_arp_table_room_to_its_host(cluster, busybox):
    """23 vnodes on one vnetwork of one pnode may hold 529 ARP entries: an agent raises the thresholds, but
    in a network namespace they are not there (they are the host's): the start goes on without them."""
    path = "/proc/sys/net/ipv4/neigh/default/gc_thresh3"
    before = open(path).read()
    with distem.Platform(cluster, progress=False) as p:
        p.vnetwork("lan", "10.160.0.0/24")
        for i in range(23):
            p.vnode(f"v{i}").image(busybox, shared=True).iface("if0", "lan").host(cluster[0].name)
        p.deploy()
        assert set(p.vnodes["status"]) == {"RUNNING"} and open(path).read() == before


@pytest.mark.root
def test_a_lost_pnode_is_named_and_cleaned_when_it_comes_back(cluster, busybox):
    lost = cluster[1]
    p = distem.Platform(cluster, progress=False)
    try:
        _deploy(p, busybox, 3)
        os.kill(p.sessions[lost.name].agent_pid, signal.SIGKILL)
        with pytest.raises(AgentError) as err:
            p.execute("hostname")
        assert err.value.pnode == lost.name and "lost the agent" in str(err.value)
        assert p.pnodes.loc[lost.name, "state"] == "lost"
        cluster.stop_sshd(lost)
    finally:
        with pytest.raises(AgentError) as err:
            p.close()
    assert err.value.pnode == lost.name and "Connection refused" in str(err.value), err.value
    assert _left_on(cluster, p, 0) == [] and _left_on(cluster, p, 2) == []
    assert _left_on(cluster, p, 1), "the unreachable pnode keeps what it had"
    cluster.start_sshd(lost)
    assert cli.main(["clean", "--pnode", lost.spec, "--state-dir", lost.state_dir, "--platform", p.id]) == 0
    deadline = time.monotonic() + 5  # LXC's monitors may take a moment to leave
    while _left_on(cluster, p, 1) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _left_on(cluster, p, 1) == []


@pytest.mark.root
def test_an_unreachable_pnode_is_named_and_the_others_closed(cluster):
    cluster.stop_sshd(2)
    try:
        with pytest.raises(AgentError) as err:
            distem.Platform(cluster, progress=False)
    finally:
        cluster.start_sshd(2)
    assert err.value.pnode == cluster[2].name and err.value.operation == "connect"
    assert "Connection refused" in str(err.value)
    for pnode in cluster[:2]:  # their sessions opened, then were closed: nothing recorded there
        platforms = Path(pnode.state_dir) / "platforms"
        assert not platforms.exists() or os.listdir(platforms) == []


@pytest.mark.root
def test_the_cluster_removes_everything_even_if_the_body_raised(busybox):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    with pytest.raises(RuntimeError):
        with local_cluster(2) as pnodes:
            p = distem.Platform(pnodes, progress=False)
            _deploy(p, busybox, 2)
            raise RuntimeError("the experiment failed")  # p never closed: the cluster cleans it
    with pytest.raises(AgentError):
        p.close()  # its pnodes are gone
    assert cluster_leftovers(pnodes) == []
