"""What this pnode is and has: read once at the handshake, shown in ``Platform.pnodes``."""

from __future__ import annotations

import os
import platform
import shutil
import socket

import lxc
from pyroute2 import IPRoute

from . import cgroups, shaping, underlay, userspace


def _meminfo_bytes(field: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _filesystems() -> set[str]:
    with open("/proc/filesystems") as f:
        return {line.split()[-1] for line in f}


def _max_mhz() -> int | None:
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") as f:
            return int(f.read()) // 1000  # kHz
    except (OSError, ValueError):
        return None  # no cpufreq (most VMs): MHz cannot be converted, ratios still work


def _addresses(interfaces: dict[str, dict[str, object]]) -> list[str]:
    """This pnode's IPv4 addresses outside loopback; the default route's interface first."""
    ordered = sorted(interfaces.values(), key=lambda i: not i["default"])
    return [cidr.split("/")[0] for i in ordered for cidr in i["addresses"]]  # type: ignore[attr-defined]


def _limit_controllers(h: cgroups.Hierarchies) -> dict[str, int]:
    """The hierarchy (1 or 2) each controller that limits vnodes is on; v1's blkio is v2's io."""
    out = {c: 2 for c in ("cpu", "cpuset", "memory", "io") if c in h.v2_controllers}
    for v1_name, name in (("cpu", "cpu"), ("cpuset", "cpuset"), ("memory", "memory"), ("blkio", "io")):
        if v1_name in h.v1:
            out[name] = 1
    return out


def facts() -> dict[str, object]:
    h = cgroups.hierarchies()
    fs = _filesystems()
    with IPRoute() as ipr:
        interfaces = underlay.interfaces(ipr)
    return {
        "hostname": socket.gethostname(),
        "addresses": _addresses(interfaces),
        "kernel": platform.release(),
        "cores": len(os.sched_getaffinity(0)),
        "memory": _meminfo_bytes("MemTotal"),
        "lxc": lxc.version,
        "python": platform.python_version(),
        "cgroup_v1": sorted(c for c in h.v1 if not c.startswith("name=")),
        "cgroup_v2": h.v2_controllers if h.v2 else None,
        "btrfs": "btrfs" in fs and shutil.which("mkfs.btrfs") is not None,
        "overlay": "overlay" in fs,
        "qdiscs": shaping.probe_qdiscs(),
        # Why the userspace delay line (NFQUEUE) can't run here; "" when it can.
        "delay_line_unavailable": userspace.available(),
        "max_mhz": _max_mhz(),
        "cgroups": _limit_controllers(h),
        "interfaces": interfaces,  # name -> addresses, mtu, default: where vnetworks meet the physical network
    }
