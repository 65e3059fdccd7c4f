"""What vnodes know of each other (pure): names in /etc/hosts, and ARP tables filled ahead.

Every vnode of a platform sees one /etc/hosts per pnode (``etc_plan``, bound read-only over its own:
see ``deploy.lxc_config``), rewritten in place as vnodes come and go; ``set_global_etchosts(data)``
writes the user's instead. ``neighbour_ops`` fills a running vnode's ARP table with its peers (Distem's
``set_global_arptable``): a platform of a thousand vnodes then starts talking without an ARP storm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from ipaddress import IPv4Address
from posixpath import join

from ..model.entities import VNode
from ..wire import vnode_owner
from .ops import FileWrite, NeighboursSet, Plan
from .paths import PnodePaths

PLATFORM_OWNER = "platform"
# Nothing a vnode could ask is reachable from it: names come from /etc/hosts, and an unknown name fails
# at once (no server on 127.0.0.1:53) instead of waiting for the build machine's resolver.
RESOLV_CONF = "# distem: vnodes find each other in /etc/hosts; no resolver is reachable\noptions timeout:1 attempts:1\n"
LOCALHOST = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]


def hosts_text(vnodes: Iterable[VNode]) -> str:
    """Every vnode's /etc/hosts: localhost, each vnode's name on its first interface's address, and
    NAME-IFACE on each of its addresses."""
    lines = list(LOCALHOST)
    for vnode in sorted(vnodes, key=lambda v: v.index):
        for i, iface in enumerate(vnode.ifaces):
            lines.append(f"{iface.address.ip}\t{vnode.name + ' ' if i == 0 else ''}{vnode.name}-{iface.name}")
    return "\n".join(lines) + "\n"


def given_hosts_text(entries: Sequence[Sequence[str]]) -> str:
    """Distem's ``set_global_etchosts(data)``: ``[[host, ip], ...]``, after localhost."""
    return "\n".join(LOCALHOST + [f"{ip}\t{host}" for host, ip in entries]) + "\n"


SMALL = 512  # the kernel's default gc_thresh2: below, a pnode's ARP table is left as it is


def neighbour_room(vnodes: Iterable[VNode]) -> dict[str, tuple[int, int]]:
    """Per pnode: (how many ARP entries its vnodes may hold at once: each, one per vnode of each of its
    vnetworks, wherever they are; how many of its ports one broadcast reaches at most: the vifaces of its
    largest vnetwork there). One pass over the vnodes for all pnodes."""
    vnodes = list(vnodes)
    members: dict[str, int] = {}
    here: dict[str, dict[str, int]] = {}
    for vnode in vnodes:
        for iface in vnode.ifaces:
            members[iface.vnetwork] = members.get(iface.vnetwork, 0) + 1
            ports = here.setdefault(vnode.host, {})
            ports[iface.vnetwork] = ports.get(iface.vnetwork, 0) + 1
    entries: dict[str, int] = {}
    for vnode in vnodes:
        entries[vnode.host] = entries.get(vnode.host, 0) + sum(members[i.vnetwork] for i in vnode.ifaces)
    return {pnode: (entries[pnode], max(ports.values())) for pnode, ports in here.items()}


def etc_plan(paths: PnodePaths, hosts: str) -> Plan:
    """The files every vnode of the platform on this pnode sees as its /etc/hosts and /etc/resolv.conf
    (rewritten in place: the vnodes' bind mounts see each version)."""
    return (FileWrite(owner=PLATFORM_OWNER, path=join(paths.etc, "hosts"), content=hosts, mode=0o644),
            FileWrite(owner=PLATFORM_OWNER, path=join(paths.etc, "resolv.conf"), content=RESOLV_CONF, mode=0o644))


def neighbour_ops(vnode: VNode, vnodes: Mapping[str, VNode],
                  given: Sequence[tuple[IPv4Address, str]] | None = None) -> list[NeighboursSet]:
    """``vnode``'s ARP table, one operation per interface: every other vnode's address and MAC on the
    same vnetwork, or (``given``: Distem's ``data``) the pairs whose address is in its vnetwork."""
    ops = []
    for iface in vnode.ifaces:
        if given is None:
            entries = [(str(other.address.ip), other.mac) for peer in vnodes.values() if peer.name != vnode.name
                       for other in peer.ifaces if other.vnetwork == iface.vnetwork]
        else:
            entries = [(str(ip), mac) for ip, mac in given if ip in iface.address.network and ip != iface.address.ip]
        if entries:
            ops.append(NeighboursSet(owner=vnode_owner(vnode.name), vnode=vnode.name, device=iface.name,
                                     entries=tuple(sorted(entries))))
    return ops
