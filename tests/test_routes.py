"""Routes between vnetworks: the model's vroutes, the per-vnode plan (golden), and live routing in real vnodes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lxc
import pytest

import distem
from distem.errors import ValidationError
from distem.model import PlatformModel, PNode, parse_cidr, parse_vnode
from distem.plan.routes import FRESH, routing_plan

from .conftest import pnode_snapshot

GOLDEN = Path(__file__).parent / "golden"
CHAIN = {"A": "10.144.0.0/24", "B": "10.144.1.0/24", "C": "10.144.2.0/24"}


def chain_model() -> PlatformModel:
    """a on A, g1 on A and B, g2 on B and C, c on C; x on A and B but no gateway."""
    model = PlatformModel("a1b2c3", [PNode(name="local")])
    for name, cidr in CHAIN.items():
        model.add_vnetwork(name, parse_cidr(name, cidr))
    nodes = {"a": ["A"], "g1": ["A", "B"], "g2": ["B", "C"], "c": ["C"], "x": ["A", "B"]}
    model.add_vnodes([parse_vnode(n, {"vfilesystem": {"image": "/i.tgz"}, **({"mode": "gateway"} if n[0] == "g" else {}),
                                      "vifaces": [{"name": f"if{i}", "vnetwork": v} for i, v in enumerate(nets)]})
                      for n, nets in nodes.items()])
    return model


def render_routing() -> str:
    """Every vnode's routing at boot after vroute_complete, then the live change when g2 stops forwarding."""
    model = chain_model()
    model.complete_vroutes()
    before = model.routing_states()
    ops = [op for name, state in before.items() for op in routing_plan(name, FRESH, state)]
    model.set_gateway("g2", False)
    after = model.routing_states()
    ops += [op for name in before for op in routing_plan(name, before[name], after[name])]
    return "\n".join(f"# {op.kind} owner={op.owner}\n{op.describe()}" for op in ops) + "\n"


def test_routing_plan_matches_golden():
    golden = GOLDEN / "routes_chain.txt"
    if os.environ.get("DISTEM_REGOLD"):
        golden.write_text(render_routing())
    assert render_routing() == golden.read_text()


def test_routing_plan_is_the_same_under_any_hash_seed():
    code = "import tests.test_routes as t; print(t.render_routing(), end='')"
    outs = {subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parent.parent, capture_output=True,
                           text=True, check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
            for seed in ("0", "1", "4242")}
    assert outs == {render_routing()}


def test_complete_follows_shortest_paths_and_hops_agree():
    model = chain_model()
    assert model.vroutes == {}
    model.complete_vroutes()
    assert {k: r.gateway for k, r in model.vroutes.items()} == {
        ("A", "B"): "g1", ("A", "C"): "g1", ("B", "A"): "g1", ("B", "C"): "g2", ("C", "A"): "g2", ("C", "B"): "g2"}
    tables = {n: {str(r.destination): (str(r.via), r.device) for r in s.routes} for n, s in model.routing_states().items()}
    assert tables["a"] == {"10.144.1.0/24": ("10.144.0.2", "if0"), "10.144.2.0/24": ("10.144.0.2", "if0")}
    assert tables["g1"] == {"10.144.2.0/24": ("10.144.1.2", "if1")}  # the next hop, never itself
    assert tables["g2"] == {"10.144.0.0/24": ("10.144.1.1", "if0")}
    assert tables["x"] == {"10.144.2.0/24": ("10.144.1.2", "if1")}  # from B, nearer C than A is
    assert model.vroute_users()[("A", "C")] == ["a"]
    assert model.routing_states()["g1"].forwarding and not model.routing_states()["a"].forwarding


def test_removals_leave_no_stale_route():
    model = chain_model()
    model.complete_vroutes()
    model.add_vroute("A", "C", "10.144.0.2")  # given explicitly, by address: it stays through a new complete
    assert not model.vroutes[("A", "C")].auto and model.complete_vroutes()
    assert not model.vroutes[("A", "C")].auto
    model.remove_vnode("g2")
    assert set(model.vroutes) == {("A", "B"), ("B", "A"), ("A", "C")}  # automatic ones recomputed without g2
    model.remove_vnode("c")
    model.remove_vnetwork("C")
    assert set(model.vroutes) == {("A", "B"), ("B", "A")}
    model.set_gateway("g1", False)
    assert model.vroutes == {} and all(not s.routes for s in model.routing_states().values())


@pytest.mark.parametrize("args, field", [
    (("Z", "B", "g1"), "vroute.srcnet"), (("A", "Z", "g1"), "vroute.dstnet"), (("A", "A", "g1"), "vroute.dstnet"),
    (("A", "B", "nobody"), "vroute.gateway"), (("A", "B", "10.9.9.9"), "vroute.gateway"),
    (("C", "A", "g1"), "vroute.gateway"),  # not on C
    (("A", "B", "x"), "vroute.gateway"),  # on both, but not a gateway
])
def test_bad_vroutes_are_refused_naming_the_field(args, field):
    model = chain_model()
    with pytest.raises(ValidationError) as err:
        model.add_vroute(*args)
    assert err.value.field == field and model.vroutes == {}


# -- real vnodes ----------------------------------------------------------------------------------
def init_pids(p: distem.Platform, state_dir: str) -> dict[str, int]:
    return {n: lxc.Container(n, f"{state_dir}/platforms/{p.id}/lxc").init_pid for n in p.model.vnodes}


def busybox_ping(p: distem.Platform, source: str, destination: str) -> bool:
    address = p.model.vnode(destination).ifaces[0].address.ip
    return p.execute(f"ping -c 1 -W 1 {address}", [source]).loc[source, "status"] == 0


@pytest.mark.root
def test_a_gateway_joins_two_vnetworks_live(platform, busybox, state_dir):
    p = platform
    p.vnetwork("A", CHAIN["A"]), p.vnetwork("B", CHAIN["B"])
    p.vnode("a").image(busybox).iface("if0", "A")
    p.vnode("gw").image(busybox).iface("if0", "A").iface("if1", "B")
    p.vnode("b").image(busybox).iface("if0", "B")
    p.deploy()
    assert p.reachable("a", ["gw", "b"]) == {"gw": True, "b": False}
    p.vnode("gw").gateway()  # live, on a running vnode
    assert p.vnode_execute("gw", "cat /proc/sys/net/ipv4/ip_forward") == "1\n"
    pids = init_pids(p, state_dir)
    assert len(p.vroute_complete()) == 2
    assert p.reachable("a", ["b"]) == {"b": True} and busybox_ping(p, "b", "a")
    assert init_pids(p, state_dir) == pids  # nothing restarted
    assert p.vroutes.loc[("A", "B")].to_dict() == {"gateway": "gw", "via": "10.144.0.2", "auto": True,
                                                   "vnodes": "a", "installed": "a"}
    p.vnode_mode("gw", gateway=False)  # live: forwarding off, and the routes through it go
    assert p.vnode_execute("gw", "cat /proc/sys/net/ipv4/ip_forward") == "0\n"
    assert p.vroutes.empty and "10.144.1.0" not in p.vnode_execute("a", "ip route")
    assert p.reachable("a", ["b"]) == {"b": False}


@pytest.mark.root
def test_three_vnetworks_two_gateways_and_a_late_vnode(platform, busybox, state_dir):
    p = platform
    for name, cidr in CHAIN.items():
        p.vnetwork(name, cidr)
    p.vnode("a").image(busybox).iface("if0", "A")
    p.vnode("g1").image(busybox).iface("if0", "A").iface("if1", "B").gateway()
    p.vnode("g2").image(busybox).iface("if0", "B").iface("if1", "C").gateway()
    p.vnode("c").image(busybox).iface("if0", "C")
    p.deploy()
    assert p.reachable("a", ["c"]) == {"c": False}
    pids = init_pids(p, state_dir)
    p.vroute_complete()
    assert p.reachable("a", ["c"]) == {"c": True} and busybox_ping(p, "c", "a")  # two hops each way
    assert init_pids(p, state_dir) == pids
    # Made after the routes: it gets them right after its start.
    p.vnode_create("late", {"vfilesystem": {"image": busybox}, "vifaces": [{"name": "if0", "vnetwork": "C"}]})
    assert "late" not in p.vroutes.loc[("C", "A"), "installed"]
    p.vnode_start("late")
    assert p.vroutes.loc[("C", "A"), "installed"] == "c, late"
    assert busybox_ping(p, "late", "a")
    # Stopped and started again, a gateway forwards again.
    p.vnode_stop("g1")
    assert not busybox_ping(p, "late", "a")
    p.vnode_start("g1")
    assert busybox_ping(p, "late", "a")
    # Removing a gateway takes the routes through it away, in the model and in running vnodes.
    p.vnode_remove("g2")
    assert list(p.vroutes.index) == [("A", "B"), ("B", "A")]
    assert p.vnode_execute("a", "ip route").count(" via ") == 1


@pytest.mark.root
def test_bad_routes_raise_and_change_nothing(platform, busybox, state_dir):
    p = platform
    p.vnetwork("A", CHAIN["A"]), p.vnetwork("B", CHAIN["B"])
    p.vnode("a").image(busybox).iface("if0", "A")
    p.vnode("gw").image(busybox).iface("if0", "A").iface("if1", "B")
    p.deploy()
    p.vnode_mode("gw")
    p.vroute_create("A", "B", "gw")
    # Read through the pnode's ip in a's namespace: an attach would itself change the pnode (lxc.log).
    before = (pnode_snapshot(state_dir), p.host_execute("a", ["ip", "route"]), dict(p.model.vroutes))
    bad = {
        "unknown srcnet": lambda: p.vroute_create("nope", "B", "gw"),
        "unknown dstnet": lambda: p.vroute_create("A", "nope", "gw"),
        "same vnetwork": lambda: p.vroute_create("A", "A", "gw"),
        "unknown gateway": lambda: p.vroute_create("B", "A", "ghost"),
        "gateway not on srcnet": lambda: p.vroute_create("B", "A", "a"),
        "not a gateway": lambda: p.vroute_create("A", "B", "a"),
        "gateway not a bool": lambda: p.vnode_mode("a", gateway="yes"),
    }
    for what, call in bad.items():
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field.startswith(("vroute.", "a.mode")), what
        assert (pnode_snapshot(state_dir), p.host_execute("a", ["ip", "route"]), dict(p.model.vroutes)) == before, what


def test_after_a_failed_change_the_next_one_sets_what_is_unsure():
    from distem.model.routes import either

    model = chain_model()
    model.complete_vroutes()
    old = model.routing_states()["g1"]
    model.set_gateway("g2", False)
    new = model.routing_states()["g1"]
    unsure = either(old, new)  # the change old -> new stopped somewhere
    assert unsure.forwarding is True and unsure.routes == () and [str(d) for d in unsure.unsure] == ["10.144.2.0/24"]
    assert [op.describe() for op in routing_plan("g1", unsure, old)] == [
        "ip route replace 10.144.2.0/24 via 10.144.1.2 dev if1"]  # back: set again whatever is there
    assert [op.describe() for op in routing_plan("g1", unsure, new)] == ["ip route del 10.144.2.0/24"]
