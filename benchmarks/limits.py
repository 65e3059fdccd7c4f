"""CPU, memory and disk IO limits, asked vs measured, on cgroup v1 (this host) and v2 (the UML guest).

    .venv/bin/python benchmarks/limits.py      -> benchmarks/results/limits.md (and .csv)

CPU: a busy loop timed inside a vnode at each ratio: its CPU time over its wall time. Memory: the cgroup's peak
usage when a process allocating past the hard limit is OOM-killed, and the largest allocation
that survives. IO: direct-I/O dd on a loop device, timed inside the vnode.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import distem
from distem.testing.probes import calibrate_loop, slowdown
from guest import host_and_guest

MB = 10**6


def cpu_rows(p: distem.Platform) -> list[dict]:
    n = calibrate_loop(p, "v", seconds=1.5)
    pnode = p.model.pnodes["local"]
    p.vcpu_create("v", 1.0, "ratio", 1 if "cpuset" in pnode.cgroups else pnode.cores)
    rows = []
    for ratio in (1.0, 0.5, 0.25):
        p.vcpu_update("v", ratio, "ratio")
        got = 1 / min(slowdown(p, "v", n) for _ in range(2))
        rows.append({"limit": "cpu ratio", "asked": f"{ratio:.2f}", "measured": f"{got:.3f}",
                     "error": f"{100 * (got / ratio - 1):+.2f}%"})
    p.vcpu_remove("v")
    return rows


def memory_rows(p: distem.Platform) -> list[dict]:
    def survives(mib: int) -> bool:
        return p.execute(f"dd if=/dev/zero of=/dev/null bs={mib}M count=1", ["v"]).loc["v", "status"] == 0

    p.vmem_create("v", {"hard_limit": 64})
    survives(96)  # killed: the peak is the limit
    peak = p.vnodes.loc["v", "memory_peak_mib"]
    largest = max(m for m in range(32, 65, 2) if survives(m))
    p.vmem_update("v", {"hard_limit": "max"})
    return [{"limit": "memory hard", "asked": "64 MiB", "measured": f"peak {peak:.1f} MiB at the OOM kill",
             "error": f"{100 * (peak / 64 - 1):+.2f}%"},
            {"limit": "memory hard", "asked": "64 MiB", "measured": f"largest surviving buffer {largest} MiB",
             "error": "(the shell and dd's own pages use the rest)"}]


def io_rows(p: distem.Platform, disk: str) -> list[dict]:
    rows = []
    for direction in ("read", "write"):
        for limit in (10 * MB, 50 * MB):
            p.vfilesystem_update("v", {"disk_throttling": {"limits": [{"device": disk, f"{direction}_limit": limit}]}})
            count = 4 * limit // 2**20
            files = f"if={disk} of=/dev/null iflag=direct" if direction == "read" else f"if=/dev/zero of={disk} oflag=direct"
            out = p.vnode_execute("v", f"read a _ </proc/uptime; dd {files} bs=1M count={count} 2>/dev/null; "
                                       "read b _ </proc/uptime; echo $a $b")
            start, end = map(float, out.split())
            got = count * 2**20 / (end - start)
            rows.append({"limit": f"io {direction} (direct I/O)", "asked": f"{limit / MB:g} MB/s",
                         "measured": f"{got / MB:.2f} MB/s", "error": f"{100 * (got / limit - 1):+.2f}%"})
        p.vfilesystem_update("v", {"disk_throttling": {"limits": [{"device": disk, f"{direction}_limit": "max"}]}})
    return rows


def measure(part: str) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="distem-bench-") as tmp:
        backing = Path(tmp) / "disk.img"
        with open(backing, "wb") as f:
            f.truncate(512 * 2**20)
        disk = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True,
                              check=True).stdout.strip()
        p = distem.Platform(state_dir=tmp, progress=False)
        try:
            p.vnetwork("vnet", "10.144.0.0/24")
            p.vnode("v").image(str(distem.images.busybox())).iface("if0", "vnet").disk(disk)
            p.deploy()
            rows = cpu_rows(p) + memory_rows(p) + io_rows(p, disk)
            version = p.model.pnodes["local"].cgroups
            kernel = p.pnodes.loc["local", "kernel"]
        finally:
            p.close()
            subprocess.run(["losetup", "-d", disk], check=True)
    return [{"kernel": kernel, "hierarchy": f"v{version[row['limit'].split()[0]]}", **row} for row in rows]


if __name__ == "__main__":
    host_and_guest(__file__, "limits", "CPU, memory and disk IO limits: asked vs measured", measure)
