"""The pnode's physical network, under vnetworks that span pnodes: VXLAN tunnels and uplinks.

``vxlan``: one VXLAN device per vnetwork, a port of the vnetwork's bridge, flooding by unicast
to every other pnode's VTEP (head-end replication: no multicast in the physical network).
``classical``: the physical interface itself becomes a port of the bridge; the pnode's addresses
and routes move onto the bridge (which takes the interface's MAC, so neighbours' ARP caches stay
right), and move back when the bridge goes.
"""

from __future__ import annotations

import errno
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from .links import alias_of

ZERO_MAC = "00:00:00:00:00:00"


def _index(ipr: IPRoute, name: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise OSError(errno.ENODEV, f"no interface {name!r} on this pnode")
    return found[0]


def interfaces(ipr: IPRoute) -> dict[str, dict[str, Any]]:
    """Each interface with an IPv4 address: its addresses (CIDR), MTU, whether it holds the default
    route, and its kind (None for a physical one). What the controller chooses VTEPs and root
    interfaces from."""
    names = {link["index"]: link for link in ipr.get_links()}
    default = {r.get_attr("RTA_OIF") for r in ipr.get_routes(family=2, table=254) if r["dst_len"] == 0}
    out: dict[str, dict[str, Any]] = {}
    for addr in ipr.get_addr(family=2):
        link = names.get(addr["index"])
        if link is None or link.get_attr("IFLA_IFNAME") == "lo":
            continue
        info = link.get_attr("IFLA_LINKINFO")
        entry = out.setdefault(link.get_attr("IFLA_IFNAME"), {
            "addresses": [], "mtu": link.get_attr("IFLA_MTU"), "default": addr["index"] in default,
            "kind": info.get_attr("IFLA_INFO_KIND") if info else None})
        entry["addresses"].append(f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}")
    return out


def vxlan_create(ipr: IPRoute, name: str, alias: str, vni: int, root: str, local: str, port: int, mtu: int,
                 bridge: str, remotes: list[str]) -> None:
    """A VXLAN port of ``bridge`` sending to every remote VTEP; an existing one of ours is reused."""
    try:
        ipr.link("add", ifname=name, kind="vxlan", vxlan_id=vni, vxlan_link=_index(ipr, root),
                 vxlan_local=local, vxlan_port=port, vxlan_learning=1, mtu=mtu)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST or alias_of(ipr, name) != alias:
            raise
    index = _index(ipr, name)
    ipr.link("set", index=index, ifalias=alias, master=_index(ipr, bridge), state="up")
    for remote in remotes:
        try:
            ipr.fdb("append", ifindex=index, lladdr=ZERO_MAC, dst=remote)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise


def _moved_routes(ipr: IPRoute, index: int) -> list[dict[str, Any]]:
    """The main table's routes through ``index`` that the kernel would not re-create by itself
    (routes of a connected subnet come back with the address)."""
    out = []
    for route in ipr.get_routes(family=2, table=254, oif=index):
        if route["proto"] == 2:  # kernel: the address's own subnet route
            continue
        out.append({"dst": f"{route.get_attr('RTA_DST') or '0.0.0.0'}/{route['dst_len']}",
                    "gateway": route.get_attr("RTA_GATEWAY"), "prefsrc": route.get_attr("RTA_PREFSRC"),
                    "priority": route.get_attr("RTA_PRIORITY"), "scope": route["scope"]})
    return out


def _addresses(ipr: IPRoute, verb: str, index: int, addresses: list[str]) -> None:
    tolerated = errno.EEXIST if verb == "add" else errno.EADDRNOTAVAIL
    for cidr in addresses:
        address, prefix = cidr.split("/")
        try:
            ipr.addr(verb, index=index, address=address, prefixlen=int(prefix))
        except NetlinkError as exc:
            if exc.code != tolerated:
                raise


def _routes(ipr: IPRoute, index: int, routes: list[dict[str, Any]]) -> None:
    for route in routes:
        ipr.route("replace", oif=index, **{k: v for k, v in route.items() if v is not None})


def uplink_state(ipr: IPRoute, root: str) -> dict[str, Any]:
    """What ``uplink`` will move off ``root`` (read only: journalled before anything moves)."""
    index = _index(ipr, root)
    return {"root": root, "routes": _moved_routes(ipr, index),
            "addresses": [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in ipr.get_addr(family=2, index=index)]}


def uplink(ipr: IPRoute, bridge: str, moved: dict[str, Any]) -> None:
    """Make the physical interface a port of ``bridge``, its addresses and routes moved onto the
    bridge (added there before they leave the interface: the pnode stays reachable)."""
    root_index, bridge_index = _index(ipr, moved["root"]), _index(ipr, bridge)
    (link,) = ipr.get_links(root_index)
    ipr.link("set", index=bridge_index, address=link.get_attr("IFLA_ADDRESS"), mtu=link.get_attr("IFLA_MTU"))
    ipr.link("set", index=root_index, master=bridge_index)
    _addresses(ipr, "add", bridge_index, moved["addresses"])
    _addresses(ipr, "del", root_index, moved["addresses"])
    _routes(ipr, bridge_index, moved["routes"])


def downlink(ipr: IPRoute, bridge: str, moved: dict[str, Any]) -> None:
    """Undo ``uplink``: the addresses and routes back on the physical interface, which leaves the bridge."""
    root_index = _index(ipr, moved["root"])
    ipr.link("set", index=root_index, master=0)
    _addresses(ipr, "add", root_index, moved["addresses"])
    found = ipr.link_lookup(ifname=bridge)
    if found:
        _addresses(ipr, "del", found[0], moved["addresses"])
    _routes(ipr, root_index, moved["routes"])
