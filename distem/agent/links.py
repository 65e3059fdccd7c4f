"""Bridges and links through netlink (pyroute2): no `ip` process per operation."""

from __future__ import annotations

import errno

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError


def _index(ipr: IPRoute, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def alias_of(ipr: IPRoute, name: str) -> str | None:
    index = _index(ipr, name)
    if index is None:
        return None
    (link,) = ipr.get_links(index)
    return link.get_attr("IFLA_IFALIAS")


def bridge_create(ipr: IPRoute, name: str, alias: str, mtu: int = 1500) -> None:
    """Create an up bridge carrying ``alias``; an existing one of ours is reused (idempotent)."""
    try:
        ipr.link("add", ifname=name, kind="bridge", mtu=mtu)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST or alias_of(ipr, name) != alias:
            raise
    index = _index(ipr, name)
    ipr.link("set", index=index, ifalias=alias, state="up")
    # No IPv6 on the pnode side: the bridge only switches, it needs no link-local address.
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "w") as f:
            f.write("1")
    except OSError:
        pass  # a kernel without IPv6


def link_delete(ipr: IPRoute, name: str, alias: str, unaliased: bool = False) -> bool:
    """Delete ``name`` if it exists and carries our alias (``unaliased``: or no alias at all, as the
    veths LXC makes under names we give); never a link someone else made."""
    index = _index(ipr, name)
    if index is None or alias_of(ipr, name) not in ((alias, None) if unaliased else (alias,)):
        return False
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:
            raise
    return True


def trunk(ipr: IPRoute, first: str, part: str, a: str, b: str, alias: str, mtu: int) -> None:
    """A veth joining two bridges of one vnetwork: ``a`` on ``first``, ``b`` on ``part``, both up."""
    ipr.link("add", ifname=a, kind="veth", peer=b, mtu=mtu)
    for end, bridge in ((a, first), (b, part)):
        ipr.link("set", index=_index(ipr, end), master=_index(ipr, bridge), ifalias=alias, mtu=mtu, state="up")
