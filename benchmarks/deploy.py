"""Time to create + start N busybox vnodes until all answer a ping, per filesystem mode, against the raw floor.

The floor: the same N containers made directly with the lxc bindings from one
shared rootfs directory, each with a veth on one bridge, started, pinged the
same way (fping from the first container's network namespace). Results go to
benchmarks/results/deploy.md (and .csv).

    .venv/bin/python benchmarks/deploy.py [--sizes 10 50 100] [--modes shared overlay distinct btrfs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import lxc
import pandas as pd
from pyroute2 import IPRoute

import distem
from distem.agent import cgroups

RESULTS = Path(__file__).parent / "results"
MODES = {"shared": {"shared": True}, "overlay": {"cow": True}, "distinct": {"shared": False}, "btrfs": {"cow": "btrfs"}}


def wait_all_answer(ping_from_first) -> None:
    deadline = time.monotonic() + 60
    while not ping_from_first():
        if time.monotonic() > deadline:
            raise RuntimeError("vnodes did not all answer within 60 s")


def distem_run(n: int, mode: str, image: str, state_dir: str) -> float:
    with distem.Platform(state_dir=state_dir, btrfs="loop:2G" if mode == "btrfs" else None, progress=False) as p:
        p.vnetwork("vnet", "10.144.0.0/16")
        started = time.perf_counter()
        for i in range(n):
            p.vnode(f"n{i}").image(image, **MODES[mode]).iface("if0", "vnet")
        p.deploy()
        wait_all_answer(lambda: all(p.reachable("n0").values()))
        return time.perf_counter() - started


def floor_run(n: int, image: str) -> float:
    """The same containers with nothing but the lxc bindings and one netlink call for the bridge.

    Same LXC options as distem's containers (no console, no ttys) and the same
    fping settings, so the difference is distem's own bookkeeping.
    """
    work = Path(tempfile.mkdtemp(prefix="distem-floor-"))
    rootfs, lxcpath = work / "rootfs", work / "lxc"
    rootfs.mkdir()
    subprocess.run(["tar", "-xpf", image, "-C", str(rootfs)], check=True)
    bridge = "dfloorb0"
    ipr = IPRoute()
    containers = []
    home = cgroups.current()
    try:
        started = time.perf_counter()
        ipr.link("add", ifname=bridge, kind="bridge")
        ipr.link("set", index=ipr.link_lookup(ifname=bridge)[0], state="up")
        for i in range(n):
            (lxcpath / f"f{i}").mkdir(parents=True)
            (lxcpath / f"f{i}" / "config").write_text(
                f"lxc.uts.name = f{i}\nlxc.rootfs.path = dir:{rootfs}\nlxc.mount.auto = proc:mixed sys:ro cgroup:mixed\n"
                f"lxc.autodev = 1\nlxc.tty.max = 0\nlxc.pty.max = 16\nlxc.console.path = none\nlxc.cgroup.dir.container = distem-floor/f{i}\nlxc.cgroup.dir.monitor = distem-floor/m{i}\n"
                f"lxc.cgroup.dir.monitor.pivot = distem-floor/pivot\nlxc.net.0.type = veth\nlxc.net.0.link = {bridge}\n"
                f"lxc.net.0.veth.pair = dfloorv{i}\nlxc.net.0.flags = up\nlxc.net.0.name = if0\n"
                f"lxc.net.0.ipv4.address = 10.146.{i // 250}.{i % 250 + 1}/16 10.146.255.255\nlxc.init.cmd = /sbin/init\n")
            c = lxc.Container(f"f{i}", str(lxcpath))
            containers.append(c)
            c.start()
        pid = containers[0].init_pid
        targets = [f"10.146.{i // 250}.{i % 250 + 1}" for i in range(1, n)]
        argv = ["nsenter", f"--net=/proc/{pid}/ns/net", "fping", "-q", "-r", "0", "-i", "1", "-t", "500", *targets]
        wait_all_answer(lambda: subprocess.run(argv, capture_output=True).returncode == 0)
        return time.perf_counter() - started
    finally:
        for c in containers:
            c.stop()
        cgroups.enter(home)  # LXC moved us into the last container's monitor cgroup
        ipr.link("del", ifname=bridge)
        ipr.close()
        shutil.rmtree(work)
        cgroups.remove_subtree("distem-floor")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 50, 100])
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()
    image = str(distem.images.busybox())
    state_dir = tempfile.mkdtemp(prefix="distem-bench-")
    rows = []
    try:
        for n in args.sizes:
            floor = min(floor_run(n, image) for _ in range(args.repeat))
            rows.append({"vnodes": n, "path": "floor (raw lxc)", "seconds": floor, "vnodes/s": n / floor, "x floor": 1.0})
            for mode in args.modes:
                took = min(distem_run(n, mode, image, state_dir) for _ in range(args.repeat))
                rows.append({"vnodes": n, "path": f"distem {mode}", "seconds": took, "vnodes/s": n / took,
                             "x floor": floor / took})
                print(f"N={n:4d} {mode:9s} {took:6.2f} s  ({floor / took:.2f}x floor {floor:.2f} s)", flush=True)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    table = pd.DataFrame(rows).round({"seconds": 3, "vnodes/s": 1, "x floor": 2})
    RESULTS.mkdir(exist_ok=True)
    table.to_csv(RESULTS / "deploy.csv", index=False)
    (RESULTS / "deploy.md").write_text(f"# deploy benchmark ({os.uname().nodename}, {os.cpu_count()} cores)\n\n"
                                       + table.to_markdown(index=False) + "\n")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
