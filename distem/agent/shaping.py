"""tc trees through netlink (pyroute2): htb for rates, netem or a FIFO as the leaf, ifb for ingress.

Every call is a ``replace``: applying the same tree twice changes nothing, and
a live change swaps a class or a leaf in place without touching the link.
pyroute2 converts times with this machine's /proc/net/psched, which is why
plans carry physical units and only the agent converts.
"""

from __future__ import annotations

import errno
import functools
import os
import socket
import struct
from typing import Any

from pyroute2 import IPBatch, IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import links, netlink_batch

ROOT = 0x10000  # 1:
CLASS = 0x10001  # 1:1, the interface's rate, shared by its children:
DEFAULT = 0x10002  # 1:2, traffic without a matrix delay (the matrix adds 1:100...)
LEAF = 0x100000  # 10:, under 1:2
# What a child class is sure of (bytes/s, and its burst at that rate): almost nothing, it borrows
# the rest of 1:1's rate, so all children share that rate (they add 8 kbit/s each at most).
CHILD_RATE, CHILD_BURST = 1000, 1600
INGRESS = 0xFFFF0000  # ffff:
TC_H_ROOT, TC_H_INGRESS = 0xFFFFFFFF, 0xFFFFFFF1
ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
PARTITION_PRIO, REDIRECT_PRIO = 1, 2  # on a veth's ingress: a partition's drops come before the redirect


def index_of(ipr: IPRoute, device: str) -> int:
    try:
        return socket.if_nametoindex(device)  # one ioctl; pyroute2's link_lookup dumps every link
    except OSError:
        raise OSError(errno.ENODEV, f"no interface {device!r} (is the vnode running?)") from None


def quantum(rate_bps: int) -> int:
    return max(1600, min(200_000, rate_bps // 80))


# pyroute2 encodes an htb class (with its rate tables) in ~0.8 ms and a qdisc in ~0.4 ms: each
# distinct request is encoded once, then only its header's device, handle and parent change, so
# a live change or an event costs little more than the kernel's work.
@functools.lru_cache(maxsize=4096)
def _template(command: str, kind: str, params: tuple[tuple[str, Any], ...]) -> bytes:
    compiled = IPBatch()
    try:
        compiled.tc(command, kind, 1, 0, parent=0, **dict(params))
        return bytes(compiled.batch)
    finally:
        compiled.close()


def encoded(command: str, kind: str, index: int, handle: int, parent: int, **params: Any) -> bytes:
    """The netlink request of ``ipr.tc(command, kind, index, handle, parent=parent, **params)``."""
    return netlink_batch.with_tcmsg(_template(command, kind, tuple(sorted(params.items()))), index, handle, parent)


def child_class(index: int, classid: int, rate_bps: int, burst_bytes: int) -> bytes:
    """A child of 1:1 that may use all of its rate."""
    return encoded("replace-class", "htb", index, classid, CLASS, rate=CHILD_RATE, ceil=rate_bps // 8,
                   burst=CHILD_BURST, cburst=burst_bytes, quantum=quantum(rate_bps))


def _htb_classes(index: int, rate_bps: int, burst_bytes: int) -> list[bytes]:
    rate = rate_bps // 8  # pyroute2 takes bytes per second
    return [encoded("replace-class", "htb", index, CLASS, ROOT, rate=rate, ceil=rate, burst=burst_bytes,
                    cburst=burst_bytes, quantum=quantum(rate_bps)),
            child_class(index, DEFAULT, rate_bps, burst_bytes)]


def htb_replace(ipr: IPRoute, device: str, rate_bps: int, burst_bytes: int) -> None:
    """The root htb once (the kernel cannot change an htb qdisc in place), then its classes replaced."""
    index = index_of(ipr, device)
    classes = _htb_classes(index, rate_bps, burst_bytes)
    try:  # a live change: the root is there (asking the kernel first would cost a qdisc dump)
        netlink_batch.send(classes)
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EINVAL, errno.EOPNOTSUPP):
            raise
        netlink_batch.send([encoded("replace", "htb", index, ROOT, TC_H_ROOT, default=DEFAULT & 0xFFFF),
                            *classes])


def netem_params(limit: int, lim: dict[str, Any]) -> dict[str, Any]:
    """``lim``: a LinkLimits as a dict (delays in us, probabilities in ppm)."""
    params: dict[str, Any] = {"limit": limit, "delay": lim["delay_us"], "jitter": lim["jitter_us"],
                              "loss": lim["loss_ppm"] / 10_000, "duplicate": lim["duplicate_ppm"] / 10_000}
    if lim["reorder_ppm"]:
        params["prob_reorder"] = lim["reorder_ppm"] / 10_000
    if lim["corrupt_ppm"]:
        params["prob_corrupt"] = lim["corrupt_ppm"] / 10_000
    return params


def netem_leaf(index: int, handle: int, parent: int, limit: int, lim: dict[str, Any]) -> bytes:
    return encoded("replace", "netem", index, handle, parent, **netem_params(limit, lim))


def netem_replace(ipr: IPRoute, device: str, limit: int, lim: dict[str, Any]) -> None:
    netlink_batch.send([netem_leaf(index_of(ipr, device), LEAF, DEFAULT, limit, lim)])


def _fifo_leaf(index: int, limit: int) -> bytes:
    return encoded("replace", "pfifo", index, LEAF, DEFAULT, limit=limit)


def fifo_replace(ipr: IPRoute, device: str, limit: int) -> None:
    netlink_batch.send([_fifo_leaf(index_of(ipr, device), limit)])


def prepare(op: dict[str, Any]) -> None:
    """Encode ahead the requests ``op`` (a wire operation) will send, so that at its instant only the
    kernel's work is left (a timeline's events; the encodings are cached)."""
    kind = op["op"]
    if kind == "htb_replace":
        _htb_classes(0, op["rate_bps"], op["burst_bytes"])
        encoded("replace", "htb", 0, ROOT, TC_H_ROOT, default=DEFAULT & 0xFFFF)
    elif kind == "redirect_ingress":
        encoded("replace", "ingress", 0, INGRESS, TC_H_INGRESS), _redirect_template()
    elif kind == "shaping_clear":
        _root_deletion(), _filter_deletion(REDIRECT_PRIO, ETH_P_ALL)
    elif kind == "netem_replace":
        netem_leaf(0, LEAF, DEFAULT, op["limit"], op["limits"])
    elif kind == "fifo_replace":
        _fifo_leaf(0, op["limit"])
    elif kind == "matrix_replace":
        for minor, limit, lim in op["set_classes"]:
            child_class(0, ROOT | minor, op["rate_bps"], op["burst_bytes"])
            netem_leaf(0, minor << 16, ROOT | minor, limit, lim)


def warm_up() -> None:
    """Load, once, the kernel modules a change may need (a guest kernel takes ~1 s the first time):
    on a throw-away ifb, an htb with a netem (or pfifo) leaf and an ingress u32 filter redirecting."""
    name = f"dwarm{os.getpid()}"[:15]
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="ifb")
        try:
            index = index_of(ipr, name)
            ipr.link("set", index=index, state="up")
            htb_replace(ipr, name, 10**9, 100_000)
            for leaf in ("netem", "pfifo"):
                try:
                    ipr.tc("replace", leaf, index, LEAF, parent=DEFAULT)
                except NetlinkError:
                    continue  # no netem here: the userspace delay line does it
            redirect_ingress(ipr, name, name)
        finally:
            ipr.link("del", index=index_of(ipr, name))


def ifb_create(ipr: IPRoute, name: str, alias: str) -> None:
    try:
        ipr.link("add", ifname=name, kind="ifb")
    except NetlinkError as exc:
        if exc.code != errno.EEXIST or links.alias_of(ipr, name) != alias:
            raise
    ipr.link("set", index=index_of(ipr, name), ifalias=alias, state="up")


def _compiled(request: Any) -> bytes:
    """The bytes of the tc request that ``request(batch)`` adds to an IPBatch (device index 1)."""
    batch = IPBatch()
    try:
        request(batch)
        return bytes(batch.batch)
    finally:
        batch.close()


@functools.lru_cache(maxsize=1)
def _root_deletion() -> bytes:
    return _compiled(lambda batch: batch.tc("del", index=1, root=True))


@functools.lru_cache(maxsize=8)
def _filter_deletion(prio: int, protocol: int) -> bytes:  # pyroute2 asks a target even to delete
    return _compiled(lambda batch: batch.tc("del-filter", "u32", 1, parent=INGRESS, prio=prio, protocol=protocol,
                                            target=0))


_TARGET = 0x7EDC_BA98  # a sentinel ifindex, found in the compiled redirect and replaced by the real one


@functools.lru_cache(maxsize=1)
def _redirect_template() -> tuple[bytes, int]:
    request = _compiled(lambda batch: batch.tc(
        "replace-filter", "u32", 1, parent=INGRESS, prio=REDIRECT_PRIO, protocol=ETH_P_ALL, target=0x1,
        keys=["0x0/0x0+0"], action={"kind": "mirred", "direction": "egress", "action": "redirect", "ifindex": _TARGET}))
    sentinel = struct.pack("=I", _TARGET)
    assert request.count(sentinel) == 1
    return request, request.index(sentinel)


def _redirect_filter(index: int, target: int) -> bytes:
    """The u32 filter on ``index``'s ingress sending everything out of ``target``."""
    request, at = _redirect_template()
    patched = bytearray(netlink_batch.with_tcmsg(request, index, 0, INGRESS))
    struct.pack_into("=I", patched, at, target)
    return bytes(patched)


def redirect_ingress(ipr: IPRoute, device: str, ifb: str) -> None:
    """What arrives on ``device`` goes out of ``ifb`` (the vnode's output is shaped there)."""
    index = index_of(ipr, device)
    netlink_batch.send([encoded("replace", "ingress", index, INGRESS, TC_H_INGRESS),
                        _redirect_filter(index, index_of(ipr, ifb))])


def shaping_clear(ipr: IPRoute, device: str, root: bool, ingress: bool) -> None:
    """Delete our root qdisc and/or the redirect of ingress (a partition's drops stay); absent ones are fine."""
    index = index_of(ipr, device)
    if root:
        _absent_ok(netlink_batch.with_tcmsg(_root_deletion(), index, 0, TC_H_ROOT))
    if ingress:
        _absent_ok(netlink_batch.with_tcmsg(_filter_deletion(REDIRECT_PRIO, ETH_P_ALL), index, 0, INGRESS))


def _absent_ok(request: bytes) -> None:
    try:
        netlink_batch.send([request])
    except OSError as exc:
        if exc.errno not in (errno.ENOENT, errno.EINVAL):
            raise


def sink_create(ipr: IPRoute, name: str, alias: str) -> None:
    """An ifb whose queue holds no packet: whatever is redirected to it is dropped, silently."""
    ifb_create(ipr, name, alias)
    ipr.tc("replace", "pfifo", index_of(ipr, name), ROOT, limit=0)


def partition_set(ipr: IPRoute, device: str, sink: str, addresses: list[str]) -> None:
    """Drop what arrives from the vnode for ``addresses`` (the list replaces the last one): redirected
    to ``sink`` (kernels without the gact action still have mirred)."""
    index = index_of(ipr, device)
    ipr.tc("replace", "ingress", index, INGRESS)
    _absent_ok(netlink_batch.with_tcmsg(_filter_deletion(PARTITION_PRIO, ETH_P_IP), index, 0, INGRESS))
    for address in addresses:
        key = f"0x{int.from_bytes(socket.inet_aton(address), 'big'):08x}/0xffffffff+16"  # the IPv4 destination
        ipr.tc("add-filter", "u32", index, parent=INGRESS, prio=PARTITION_PRIO, protocol=ETH_P_IP, target=0x1,
               keys=[key], action={"kind": "mirred", "direction": "egress", "action": "redirect",
                                   "ifindex": index_of(ipr, sink)})


def probe_qdiscs(kinds: tuple[str, ...] = ("htb", "netem", "tbf", "ingress", "pfifo")) -> list[str]:
    """Which qdisc kinds this kernel accepts, tried on a throw-away ifb device."""
    name = f"dprobe{os.getpid()}"[:15]
    found = []
    with IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="ifb")
        try:
            index = index_of(ipr, name)
            for kind in kinds:
                try:
                    if kind == "ingress":
                        ipr.tc("add", "ingress", index, INGRESS)
                        ipr.tc("del", "ingress", index, INGRESS)
                    else:
                        ipr.tc("add", kind, index, ROOT, **({"rate": 125_000, "burst": 15_000, "latency": 50_000}
                                                             if kind == "tbf" else {}))
                        ipr.tc("del", index=index, root=True)
                    found.append(kind)
                except NetlinkError:
                    continue
        finally:
            ipr.link("del", index=index_of(ipr, name))
    return found
