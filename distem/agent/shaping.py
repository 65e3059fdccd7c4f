"""tc trees through netlink (pyroute2): htb for rates, netem or a FIFO as the leaf, ifb for ingress.

Every call is a ``replace``: applying the same tree twice changes nothing, and
a live change swaps a class or a leaf in place without touching the link.
pyroute2 converts times with this machine's /proc/net/psched, which is why
plans carry physical units and only the agent converts.
"""

from __future__ import annotations

import errno
import os
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from . import links

ROOT = 0x10000  # 1:
CLASS = 0x10001  # 1:1, the interface's rate, shared by its children:
DEFAULT = 0x10002  # 1:2, traffic without a matrix delay (the matrix adds 1:100...)
LEAF = 0x100000  # 10:, under 1:2
# What a child class is sure of (bytes/s, and its burst at that rate): almost nothing, it borrows
# the rest of 1:1's rate, so all children share that rate (they add 8 kbit/s each at most).
CHILD_RATE, CHILD_BURST = 1000, 1600
INGRESS = 0xFFFF0000  # ffff:
ETH_P_ALL = 0x0003


def index_of(ipr: IPRoute, device: str) -> int:
    found = ipr.link_lookup(ifname=device)
    if not found:
        raise OSError(errno.ENODEV, f"no interface {device!r} (is the vnode running?)")
    return found[0]


def _has_root(ipr: IPRoute, index: int, kind: str) -> bool:
    return any(q.get_attr("TCA_KIND") == kind and q["handle"] == ROOT and q["parent"] == 0xFFFFFFFF
               for q in ipr.get_qdiscs(index=index))


def quantum(rate_bps: int) -> int:
    return max(1600, min(200_000, rate_bps // 80))


def child_class(ipr: Any, index: int, classid: int, rate_bps: int, burst_bytes: int) -> None:
    """A child of 1:1 that may use all of its rate (``ipr`` may be an IPBatch)."""
    ipr.tc("replace-class", "htb", index, classid, parent=CLASS, rate=CHILD_RATE, ceil=rate_bps // 8,
           burst=CHILD_BURST, cburst=burst_bytes, quantum=quantum(rate_bps))


def htb_replace(ipr: IPRoute, device: str, rate_bps: int, burst_bytes: int) -> None:
    """The root htb once (the kernel cannot change an htb qdisc in place), then its classes replaced."""
    index = index_of(ipr, device)
    rate = rate_bps // 8  # pyroute2 takes bytes per second
    if not _has_root(ipr, index, "htb"):
        ipr.tc("replace", "htb", index, ROOT, default=DEFAULT & 0xFFFF)
    ipr.tc("replace-class", "htb", index, CLASS, parent=ROOT, rate=rate, ceil=rate, burst=burst_bytes,
           cburst=burst_bytes, quantum=quantum(rate_bps))
    child_class(ipr, index, DEFAULT, rate_bps, burst_bytes)


def netem_params(limit: int, lim: dict[str, Any]) -> dict[str, Any]:
    """``lim``: a LinkLimits as a dict (delays in us, probabilities in ppm)."""
    params: dict[str, Any] = {"limit": limit, "delay": lim["delay_us"], "jitter": lim["jitter_us"],
                              "loss": lim["loss_ppm"] / 10_000, "duplicate": lim["duplicate_ppm"] / 10_000}
    if lim["reorder_ppm"]:
        params["prob_reorder"] = lim["reorder_ppm"] / 10_000
    if lim["corrupt_ppm"]:
        params["prob_corrupt"] = lim["corrupt_ppm"] / 10_000
    return params


def netem_replace(ipr: IPRoute, device: str, limit: int, lim: dict[str, Any]) -> None:
    ipr.tc("replace", "netem", index_of(ipr, device), LEAF, parent=DEFAULT, **netem_params(limit, lim))


def fifo_replace(ipr: IPRoute, device: str, limit: int) -> None:
    ipr.tc("replace", "pfifo", index_of(ipr, device), LEAF, parent=DEFAULT, limit=limit)


def ifb_create(ipr: IPRoute, name: str, alias: str) -> None:
    try:
        ipr.link("add", ifname=name, kind="ifb")
    except NetlinkError as exc:
        if exc.code != errno.EEXIST or links.alias_of(ipr, name) != alias:
            raise
    ipr.link("set", index=index_of(ipr, name), ifalias=alias, state="up")


def redirect_ingress(ipr: IPRoute, device: str, ifb: str) -> None:
    index, target = index_of(ipr, device), index_of(ipr, ifb)
    ipr.tc("replace", "ingress", index, INGRESS)
    ipr.tc("replace-filter", "u32", index, parent=INGRESS, prio=1, protocol=ETH_P_ALL, target=0x1,
           keys=["0x0/0x0+0"], action={"kind": "mirred", "direction": "egress", "action": "redirect",
                                       "ifindex": target})


def shaping_clear(ipr: IPRoute, device: str, root: bool, ingress: bool) -> None:
    """Delete our root and/or ingress qdisc; absent ones are fine."""
    index = index_of(ipr, device)
    for kind in [k for k, wanted in (("root", root), ("ingress", ingress)) if wanted]:
        try:
            if kind == "ingress":
                ipr.tc("del", "ingress", index, INGRESS)
            else:
                ipr.tc("del", index=index, root=True)
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.EINVAL):
                raise


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
