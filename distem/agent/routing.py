"""Routing inside running vnodes: IPv4 forwarding and routes, set in a vnode's network namespace.

The namespace is entered through its init process (``/proc/<pid>/ns/net``) by a short-lived
thread: ``setns`` moves only the calling thread, so the agent itself never leaves the pnode's
namespace. That thread writes the forwarding sysctl (``/proc/sys/net`` is the caller's namespace's)
or opens a netlink socket, which stays bound to the vnode's namespace whoever uses it afterwards.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError

T = TypeVar("T")
NUD_PERMANENT = 0x80  # linux/neighbour.h


def in_netns(pid: int, action: Callable[[], T]) -> T:
    """``action()``'s result, run by a thread inside the network namespace of process ``pid``."""
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)  # raises if the process is gone
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            netns.setns(fd)
            outcome["value"] = action()
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    try:
        thread = threading.Thread(target=run, name=f"netns-{pid}")
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _write_forwarding(enabled: bool) -> None:
    _write_sysctl("ipv4/ip_forward", "1" if enabled else "0")


def _write_sysctl(name: str, value: str) -> None:
    """A net sysctl of the calling thread's network namespace."""
    with open(f"/proc/sys/net/{name}", "w") as f:
        f.write(value)


class VnodeRouting:
    """Netlink sockets into vnodes' namespaces, opened at first use and closed at the end of a batch.

    ``init_pid``: the pid of a running vnode's init (raises when the vnode does not run).
    """

    def __init__(self, init_pid: Callable[[str], int]) -> None:
        self._init_pid = init_pid
        self._open: dict[str, IPRoute] = {}

    def _ipr(self, vnode: str) -> IPRoute:
        if vnode not in self._open:
            sock = in_netns(self._init_pid(vnode),
                            lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, socket.NETLINK_ROUTE))
            self._open[vnode] = IPRoute(fileno=sock.detach())
        return self._open[vnode]

    def set_forwarding(self, vnode: str, enabled: bool) -> None:
        in_netns(self._init_pid(vnode), lambda: _write_forwarding(enabled))

    def replace(self, vnode: str, destination: str, via: str, device: str) -> None:
        ipr = self._ipr(vnode)
        found = ipr.link_lookup(ifname=device)
        if not found:
            raise OSError(errno.ENODEV, f"vnode {vnode} has no interface {device}")
        ipr.route("replace", dst=destination, gateway=via, oif=found[0])

    def delete(self, vnode: str, destination: str) -> None:
        try:
            self._ipr(vnode).route("del", dst=destination)
        except NetlinkError as exc:
            if exc.code != errno.ESRCH:  # ESRCH: no such route, which is what was asked
                raise

    def set_neighbours(self, vnode: str, device: str, entries: list[list[str]]) -> None:
        """Permanent ARP entries (address, MAC) on ``device``: the vnode never asks for them."""
        ipr = self._ipr(vnode)
        found = ipr.link_lookup(ifname=device)
        if not found:
            raise OSError(errno.ENODEV, f"vnode {vnode} has no interface {device}")
        for address, mac in entries:
            ipr.neigh("replace", dst=address, lladdr=mac, ifindex=found[0], state=NUD_PERMANENT)

    def attach_veth(self, host: IPRoute, vnode: str, name: str, alias: str, bridge: str, iface: str, mac: str,
                    address: str, broadcast: str, mtu: int) -> None:
        """A veth ``name`` on ``bridge`` whose peer is born in the vnode's namespace as ``iface``, set up there
        as LXC sets up the interfaces it makes at a start."""
        fd = os.open(f"/proc/{self._init_pid(vnode)}/ns/net", os.O_RDONLY)
        try:
            host.link("add", ifname=name, kind="veth", mtu=mtu, peer={"ifname": iface, "net_ns_fd": fd, "mtu": mtu})
        finally:
            os.close(fd)
        (index,), (master,) = host.link_lookup(ifname=name), host.link_lookup(ifname=bridge)
        host.link("set", index=index, master=master, ifalias=alias, state="up")
        in_netns(self._init_pid(vnode), lambda: _write_sysctl(f"ipv6/conf/{iface}/disable_ipv6", "1"))  # as at a start
        ipr = self._ipr(vnode)
        (inside,) = ipr.link_lookup(ifname=iface)
        ipr.link("set", index=inside, address=mac, state="up")
        ip, prefix = address.split("/")
        ipr.addr("add", index=inside, address=ip, prefixlen=int(prefix), broadcast=broadcast)

    def close(self) -> None:
        for ipr in self._open.values():
            ipr.close()
        self._open.clear()
