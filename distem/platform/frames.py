"""The platform's state as pandas DataFrames (pure functions of the model).

    vnodes     index name: host, status, image, filesystem, interfaces, addresses, gateway,
               cores (pinned pnode cores), cpu_ratio (speed of each, 1.0 = full), memory_limit, io_limit
               (the limits and their cgroup hierarchy), and what the vnode has used, read from its
               cgroups: cpu_s, memory_mib, memory_peak_mib, io_read_mib, io_write_mib
    vifaces    index (vnode, iface): vnetwork, address, mac, host_ifname, bridge, output, input, backend
               (output/input: the limits in tc's words; backend: netem or userspace, per pnode)
    vnetworks  index name: cidr, type, root_interface, bridge, mtu (the vnodes'), vnodes, free_addresses
    pnodes     index name: spec, address (its first IPv4 address, the default route's first), hostname,
               state (connected, lost, closed), kernel, cores, memory_gib, lxc, cgroup_v1, cgroup_v2, btrfs,
               capabilities (how it delays: netem or the userspace delay line; overlay, btrfs), vnodes (hosted)
    vroutes    index (srcnet, dstnet): gateway (a vnode), via (its address on srcnet), auto (made by
               vroute_complete), vnodes (those whose tables carry it), installed (those of them whose
               running namespace holds it now)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..model import PlatformModel
from ..model.links import LinkLimits
from ..model.names import bridge_name, bridge_part, veth_name
from ..model.resources import VIo, VMem
from ..model.routes import RoutingState, iface_on
from ..model.units import format_duration, format_rate

VNODE_COLUMNS = ["host", "status", "image", "filesystem", "interfaces", "addresses", "gateway", "cores", "cpu_ratio",
                 "memory_limit", "io_limit", "cpu_s", "memory_mib", "memory_peak_mib", "io_read_mib", "io_write_mib"]
VIFACE_COLUMNS = ["vnetwork", "address", "mac", "host_ifname", "bridge", "output", "input", "backend"]
VNETWORK_COLUMNS = ["cidr", "type", "root_interface", "bridge", "mtu", "vnodes", "free_addresses"]
VROUTE_COLUMNS = ["gateway", "via", "auto", "vnodes", "installed"]
PNODE_COLUMNS = ["spec", "address", "hostname", "state", "kernel", "cores", "memory_gib", "lxc", "cgroup_v1",
                 "cgroup_v2", "btrfs", "capabilities", "vnodes"]


class Table(pd.DataFrame):
    """A DataFrame whose notebook view fits the page: columns empty (or False) in every row are hidden and
    named under the table, long text is shortened in the middle and never wrapped, headers wrap at their
    underscores. The data are whole; anything computed from it is a plain DataFrame."""

    WIDEST = 24  # characters of a cell shown

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str | None:
        shown = pd.DataFrame(self)
        empty = [c for c in shown.columns if len(shown) and shown[c].map(_blank).all()]
        shown = shown.drop(columns=empty).map(lambda v: _shortened(v, self.WIDEST))
        note = f"<p><small>empty in every row, not shown: {', '.join(empty)}</small></p>" if empty else ""
        try:
            styled = (shown.style.format(lambda v: f"{v:g}" if isinstance(v, float) else v, escape="html")
                      .format_index(lambda name: str(name).replace("_", "_\u200b"), axis=1, escape="html")
                      .format_index(escape="html", axis=0)
                      .set_table_styles([{"selector": "th", "props": "white-space: normal; max-width: 6em"},
                                         {"selector": "td", "props": "white-space: nowrap"}]))
            return styled.to_html() + note
        except ImportError:  # the Styler needs jinja2
            return (shown._repr_html_() or "") + note


def _blank(value: object) -> bool:
    """Nothing to say: an empty text, None, False (not 0: a usage of 0 is a reading)."""
    return value is None or value == "" or (isinstance(value, bool | np.bool_) and not value)


def _shortened(value: object, widest: int) -> object:
    if isinstance(value, str) and len(value) > widest:
        half = (widest - 1) // 2
        return f"{value[:half]}…{value[-half:]}"
    return value


def _frame(rows: list[dict[str, Any]], columns: list[str], index: str | list[str]) -> pd.DataFrame:
    names = [index] if isinstance(index, str) else index
    return pd.DataFrame(rows, columns=names + columns).set_index(index)


def vnodes_frame(model: PlatformModel, usage: Mapping[str, Mapping[str, int]] | None = None) -> pd.DataFrame:
    """``usage``: per vnode, the agent's cgroup counters (cpu_ns, memory_bytes, io_*_bytes)."""
    rows = []
    for v in model.vnodes.values():
        used = (usage or {}).get(v.name, {})
        rows.append({"name": v.name, "host": v.host, "status": model.status[v.name],
                     "image": v.filesystem.image.rsplit("/", 1)[-1], "filesystem": v.filesystem.mode,
                     "interfaces": len(v.ifaces), "addresses": ", ".join(str(i.address.ip) for i in v.ifaces),
                     "gateway": v.gateway, "cores": ",".join(map(str, v.cpuset)),
                     "cpu_ratio": v.vcpu.ratio if v.vcpu else 1.0, "memory_limit": describe_vmem(v.vmem),
                     "io_limit": describe_vio(v.vio), "cpu_s": round(used.get("cpu_ns", 0) / 1e9, 3),
                     "memory_mib": round(used.get("memory_bytes", 0) / 2**20, 1),
                     "memory_peak_mib": round(used.get("memory_peak_bytes", 0) / 2**20, 1),
                     "io_read_mib": round(used.get("io_read_bytes", 0) / 2**20, 1),
                     "io_write_mib": round(used.get("io_write_bytes", 0) / 2**20, 1)})
    return Table(_frame(rows, VNODE_COLUMNS, "name"))


def _mib(n: int | None) -> str:
    return "max" if n is None else f"{n / 2**20:g}M"


def describe_vmem(vmem: VMem | None) -> str:
    """'v1 hard 64M soft max swap 16M'."""
    if vmem is None:
        return ""
    return f"v{vmem.hierarchy} hard {_mib(vmem.hard)} soft {_mib(vmem.soft)} swap {_mib(vmem.swap)}"


def describe_vio(vio: VIo | None) -> str:
    """'v2 /dev/loop0 r 10MB/s w max'; rates in decimal MB/s as disks are sold, IOPS as 'r 100 iops'."""
    if vio is None:
        return ""
    parts = []
    for limit in vio.limits:
        words = [limit.device]
        for label, bps, iops in (("r", limit.read_bps, limit.read_iops), ("w", limit.write_bps, limit.write_iops)):
            words.append(f"{label} {'max' if bps is None else f'{bps / 1e6:g}MB/s'}"
                         + (f" {iops} iops" if iops is not None else ""))
        parts.append(" ".join(words))
    return f"v{vio.hierarchy} " + "; ".join(parts)


def describe_limits(limits: LinkLimits | None) -> str:
    """'100mbit 20ms±2ms loss 1%' — the limits in a few words."""
    if not limits:
        return ""
    parts = [format_rate(limits.rate_bps)] if limits.rate_bps else []
    if limits.delay_us:
        parts.append(format_duration(limits.delay_us) + (f"±{format_duration(limits.jitter_us)}" if limits.jitter_us else ""))
    for word, ppm in (("loss", limits.loss_ppm), ("corrupt", limits.corrupt_ppm), ("duplicate", limits.duplicate_ppm),
                      ("reorder", limits.reorder_ppm)):
        if ppm:
            parts.append(f"{word} {ppm / 10_000:g}%")
    return " ".join(parts)


def vifaces_frame(model: PlatformModel, backends: dict[str, str]) -> pd.DataFrame:
    rows = []
    for v in model.vnodes.values():
        for iface in v.ifaces:
            vnet = model.vnetworks[iface.vnetwork]
            rows.append({"vnode": v.name, "iface": iface.name, "vnetwork": iface.vnetwork,
                         "address": str(iface.address), "mac": iface.mac,
                         "host_ifname": veth_name(model.platform_id, v.index, iface.slot),
                         "bridge": bridge_name(model.platform_id, vnet.bridge_index, bridge_part(v.index)),
                         "output": describe_limits(iface.output), "input": describe_limits(iface.input),
                         "backend": backends.get(v.host)})
    return _frame(rows, VIFACE_COLUMNS, ["vnode", "iface"])


def vnetworks_frame(model: PlatformModel) -> pd.DataFrame:
    rows = []
    for vnet in model.vnetworks.values():
        used = model.used_addresses(vnet.name)
        rows.append({"name": vnet.name, "cidr": str(vnet.cidr), "type": vnet.network_type,
                     "root_interface": vnet.root_interface, "bridge": bridge_name(model.platform_id, vnet.bridge_index),
                     "mtu": vnet.link_mtu,
                     "vnodes": sum(any(i.vnetwork == vnet.name for i in v.ifaces) for v in model.vnodes.values()),
                     "free_addresses": vnet.cidr.num_addresses - 3 - len(used)})
    return _frame(rows, VNETWORK_COLUMNS, "name")


def _capabilities(facts: Mapping[str, Any], backend: str | None) -> str:
    delay = {"netem": "netem", "userspace": "delay line" if not facts.get("delay_line_unavailable") else "no delay"}
    found = [delay[backend]] if backend in delay else []
    return ", ".join(found + [fs for fs in ("overlay", "btrfs") if facts.get(fs)])


def pnodes_frame(model: PlatformModel, facts: Mapping[str, Mapping[str, Any]],
                 states: Mapping[str, str] | None = None, backends: Mapping[str, str] | None = None) -> pd.DataFrame:
    """``states``: per pnode, connected, lost or closed; ``backends``: netem or userspace."""
    rows = []
    for p in model.pnodes.values():
        f = facts.get(p.name, {})
        rows.append({"name": p.name, "spec": p.spec, "address": next(iter(f.get("addresses") or []), None),
                     "hostname": f.get("hostname"), "state": (states or {}).get(p.name), "kernel": f.get("kernel"),
                     "cores": f.get("cores"), "memory_gib": round((p.memory or f.get("memory", 0)) / 2**30, 1),
                     "lxc": f.get("lxc"), "cgroup_v1": ",".join(f.get("cgroup_v1") or []),
                     "cgroup_v2": ",".join(f.get("cgroup_v2") or []), "btrfs": f.get("btrfs"),
                     "capabilities": _capabilities(f, (backends or {}).get(p.name)),
                     "vnodes": sum(v.host == p.name for v in model.vnodes.values())})
    return _frame(rows, PNODE_COLUMNS, "name")


def vroutes_frame(model: PlatformModel, held: Mapping[str, RoutingState]) -> pd.DataFrame:
    """``held``: what each running vnode's namespace holds (the platform tracks it)."""
    wanted = model.routing_states()
    rows = []
    for (srcnet, dstnet), users in model.vroute_users().items():
        route = model.vroutes[(srcnet, dstnet)]
        via = iface_on(model.vnodes[route.gateway], srcnet)
        cidr = model.vnetworks[dstnet].cidr
        installed = [u for u in users if u in held
                     and any(r in held[u].routes for r in wanted[u].routes if r.destination == cidr)]
        rows.append({"srcnet": srcnet, "dstnet": dstnet, "gateway": route.gateway,
                     "via": str(via.address.ip) if via else None, "auto": route.auto,
                     "vnodes": ", ".join(users), "installed": ", ".join(installed)})
    return _frame(rows, VROUTE_COLUMNS, ["srcnet", "dstnet"])
