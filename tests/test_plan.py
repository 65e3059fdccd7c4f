"""Plans are pure: golden-tested, in order, identical under any hash seed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from distem.model import PlatformModel, PNode, parse_cidr, parse_vnode
from distem.plan import PnodePaths, Underlay, vnetwork_plan, vnodes_plan

GOLDEN = Path(__file__).parent / "golden"


def all_modes_plan(btrfs: str | None = "loop:256M") -> list:
    """A vnetwork and five vnodes, one per filesystem mode, with CPU and memory limits and a key."""
    pnode = PNode(name="local", btrfs=btrfs, cores=2, cgroups={"cpu": 1, "cpuset": 1, "memory": 1, "io": 1})
    model = PlatformModel("a1b2c3", [pnode])
    vnet = model.add_vnetwork("vnet", parse_cidr("vnet", "10.144.0.0/24"))
    modes = [{"shared": True}, {"shared": True}, {"shared": False}, {}, {"cow": "btrfs"}]
    requests = [parse_vnode(f"n{i}", {"vfilesystem": {"image": "/images/bb.tar.gz", **fs},
                                      "vifaces": [{"name": "if0", "vnetwork": "vnet"}],
                                      **({"vcpu": {"corenb": 1, "val": 0.25, "unit": "ratio"}} if i == 2 else {}),
                                      **({"vmem": {"mem": 64, "soft_limit": "32M", "swap": 16}} if i == 3 else {})},
                            {"public": "ssh-ed25519 AAAA test"} if i == 0 else None)
                for i, fs in enumerate(modes)]
    vnodes = model.add_vnodes(requests)
    return list(vnetwork_plan("a1b2c3", vnet, "local", {}) + vnodes_plan(
        PnodePaths("/var/lib/distem", "a1b2c3"), vnodes, model.vnetworks, {"/images/bb.tar.gz": "0123abcd"}, pnode))


def render(btrfs: str | None = "loop:256M") -> str:
    ops = all_modes_plan(btrfs)
    return "\n".join(f"# {op.kind} owner={op.owner}\n{op.describe()}" for op in ops) + "\n"


def test_plan_matches_golden():
    golden = GOLDEN / "plan_all_modes.txt"
    if os.environ.get("DISTEM_REGOLD"):
        golden.write_text(render())
    assert render() == golden.read_text()


def render_across_pnodes() -> str:
    """A VXLAN and two classical vnetworks (sharing one uplink) on pnode a of three, and a vnode on the VXLAN one."""
    pnodes = [PNode(name=n) for n in "abc"]
    underlays = {p.name: Underlay("eth0", f"10.213.0.{i + 1}", 1500) for i, p in enumerate(pnodes)}
    model = PlatformModel("a1b2c3", pnodes)
    vnets = [model.add_vnetwork("tunnel", parse_cidr("tunnel", "10.144.0.0/24"), "vxlan", mtu=1450),
             model.add_vnetwork("flat", parse_cidr("flat", "10.145.0.0/24")),
             model.add_vnetwork("flat2", parse_cidr("flat2", "10.146.0.0/24"))]
    (vnode,) = model.add_vnodes([parse_vnode("v", {"host": "a", "vfilesystem": {"image": "/images/bb.tar.gz"},
                                                   "vifaces": [{"name": "if0", "vnetwork": "tunnel"}]})])
    ops = [op for v in vnets for op in vnetwork_plan("a1b2c3", v, "a", underlays)]
    ops += vnodes_plan(PnodePaths("/var/lib/distem", "a1b2c3"), [vnode], model.vnetworks,
                       {"/images/bb.tar.gz": "0123abcd"}, pnodes[0])
    return "\n".join(f"# {op.kind} owner={op.owner}\n{op.describe()}" for op in ops) + "\n"


def test_vnetworks_across_pnodes_match_golden():
    golden = GOLDEN / "plan_across_pnodes.txt"
    if os.environ.get("DISTEM_REGOLD"):
        golden.write_text(render_across_pnodes())
    assert render_across_pnodes() == golden.read_text()


def test_plan_is_the_same_under_any_hash_seed():
    code = "import tests.test_plan as t; print(t.render(), end='')"
    root = Path(__file__).parent.parent
    outs = {subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("0", "1", "4242")}
    assert outs == {render()}


def test_ops_cross_the_channel_as_plain_dicts():
    model = PlatformModel("a1b2c3", [PNode(name="local")])
    vnet = model.add_vnetwork("vnet", parse_cidr("vnet", "10.144.0.0/24"))
    (op,) = vnetwork_plan("a1b2c3", vnet, "local", {})
    assert op.to_wire() == {"op": "bridge_create", "owner": "vnetwork:vnet", "name": "da1b2c3b0",
                            "alias": "distem:a1b2c3", "mtu": 1500}


@pytest.mark.parametrize("mode", ["shared", "distinct", "overlay"])
def test_every_mode_defines_a_container_last(mode):
    model = PlatformModel("a1b2c3", [PNode(name="local")])
    model.add_vnetwork("vnet", parse_cidr("vnet", "10.144.0.0/24"))
    fs = {"shared": {"shared": True}, "distinct": {"shared": False}, "overlay": {}}[mode]
    (vnode,) = model.add_vnodes([parse_vnode("n", {"vfilesystem": {"image": "/i.tgz", **fs}})])
    ops = vnodes_plan(PnodePaths("/s", "a1b2c3"), [vnode], model.vnetworks, {"/i.tgz": "ab"}, model.pnodes["local"])
    assert ops[0].kind == "image_extract" and ops[-1].kind == "container_define"


def shaping_plan(backend: str) -> list:
    """Rate, delay, jitter and loss on one interface, a rate on the other."""
    from distem.plan.shaping import vnode_shaping

    model = PlatformModel("a1b2c3", [PNode(name="local")])
    model.add_vnetwork("vnet", parse_cidr("vnet", "10.144.0.0/24"))
    (vnode,) = model.add_vnodes([parse_vnode("n", {"vfilesystem": {"image": "/i.tgz"}, "vifaces": [
        {"name": "if0", "vnetwork": "vnet", "output": {"bandwidth": "100mbps", "latency": {"delay": "50ms", "jitter": "5ms"},
                                                        "loss": 1}},
        {"name": "if1", "vnetwork": "vnet", "input": {"bandwidth": "1mbps"}}]})])
    return list(vnode_shaping("a1b2c3", vnode, backend))


def render_shaping(backend: str) -> str:
    return "\n".join(f"# {op.kind}\n{op.describe()}" for op in shaping_plan(backend)) + "\n"


@pytest.mark.parametrize("backend", ["netem", "userspace"])
def test_shaping_plan_matches_golden(backend):
    golden = GOLDEN / f"shaping_{backend}.txt"
    if os.environ.get("DISTEM_REGOLD"):
        golden.write_text(render_shaping(backend))
    assert render_shaping(backend) == golden.read_text()
