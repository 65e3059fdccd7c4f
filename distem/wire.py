"""The wire between the plan and the agents: every operation's name and its fields.

An operation crosses the execnet channel as a dict, ``{"op": NAME, "owner": OWNER, FIELD: value, ...}``
(a nested LinkLimits as a dict of its own; see ``Op.to_wire`` in distem/plan/ops.py). The plan has
one dataclass per name with exactly these fields; the agent's Applier one method per name taking
exactly these keywords and ``owner`` (tests/test_wire.py holds all three together). Standard
library only, and a plain module: the agent ships it (distem/agent/wire.py is a link to this file).
"""

from __future__ import annotations

from typing import Any

OPS: dict[str, tuple[str, ...]] = {
    # vnetworks
    "bridge_create": ("name", "alias", "mtu"),
    "vxlan_create": ("name", "alias", "vni", "root", "local", "port", "mtu", "bridge", "remotes"),
    "uplink": ("bridge", "root"),
    "bridge_extend": ("bridge", "part", "trunk", "alias", "mtu"),
    # filesystems and containers
    "image_extract": ("tarball", "sha", "target"),
    "tree_copy": ("source", "target"),
    "overlay_mount": ("lower", "upper", "work", "target"),
    "make_dir": ("path",),
    "btrfs_loop": ("image", "size", "mountpoint"),
    "btrfs_base": ("source", "target"),
    "btrfs_snapshot": ("source", "target"),
    "file_write": ("path", "content", "mode"),
    "container_define": ("name", "lxcpath", "config"),
    # traffic shaping, once a vnode's host-side veth exists
    "ifb_create": ("name", "alias"),
    "redirect_ingress": ("device", "ifb"),
    "htb_replace": ("device", "rate_bps", "burst_bytes"),
    "netem_replace": ("device", "limit", "limits"),
    "fifo_replace": ("device", "limit"),
    "matrix_replace": ("device", "rate_bps", "burst_bytes", "table", "set_classes", "drop_classes", "entries",
                       "drop_entries"),
    "delayline_set": ("device", "direction", "chain", "comment", "limits", "destinations"),
    "delayline_cells": ("device", "destinations", "drop"),
    "delayline_clear": ("device", "direction", "chain", "comment"),
    "shaping_clear": ("device", "root", "ingress"),
    "partition_set": ("device", "sink", "alias", "addresses"),
    "link_state": ("device", "up"),
    "cgroup_write": ("version", "controller", "path", "file", "value"),
    "neighbour_room": ("gc_thresh2", "gc_thresh3", "netdev_max_backlog"),
    # routing inside a running vnode's network namespace
    "forwarding_set": ("vnode", "enabled"),
    "route_replace": ("vnode", "destination", "via", "device"),
    "route_delete": ("vnode", "destination"),
    "neighbours_set": ("vnode", "device", "entries"),
    # a running vnode's interfaces, live
    "veth_attach": ("vnode", "name", "alias", "bridge", "iface", "mac", "address", "broadcast", "mtu"),
    "link_remove": ("device", "alias"),
}
ENVELOPE = ("op", "owner")  # what every operation carries besides its fields
# What an agent says of one failed operation (a batch's, or one vnode's in start, stop, execute...).
FAILURE = ("operation", "target", "errno", "index", "message")


def vnode_owner(name: str) -> str:
    """The owner of what is created for vnode ``name``: removing the vnode undoes exactly that."""
    return f"vnode:{name}"


def vnetwork_owner(name: str) -> str:
    return f"vnetwork:{name}"


def check(op: dict[str, Any]) -> str:
    """'' when ``op`` is a known operation with exactly its fields, else what is wrong with it."""
    name = op.get("op")
    if name not in OPS:
        return f"unknown operation {name!r}"
    keys, wanted = set(op), set(ENVELOPE) | set(OPS[name])
    missing, extra = sorted(wanted - keys), sorted(keys - wanted)
    return "; ".join([f"{name}: missing {', '.join(missing)}"] * bool(missing)
                     + [f"{name}: unknown {', '.join(extra)}"] * bool(extra))
