"""What this pnode is and has: read once at the handshake, shown in ``Platform.pnodes``."""

from __future__ import annotations

import os
import platform
import shutil
import socket

import lxc

from . import cgroups, shaping


def _meminfo_bytes(field: str) -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _filesystems() -> set[str]:
    with open("/proc/filesystems") as f:
        return {line.split()[-1] for line in f}


def facts() -> dict[str, object]:
    h = cgroups.hierarchies()
    fs = _filesystems()
    return {
        "hostname": socket.gethostname(),
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
    }
