"""Scale on one pnode, and the plan of a 10,000-vnode platform on 50.

One pnode (this machine): N busybox vnodes (shared filesystem) on one vnetwork, created, started (the
start rate per 100 as they come up), all reached from n0, a latency matrix set on every pair, one cell
changed, and the platform closed; the agent's memory and file descriptors and the machine's memory per
vnode at N. Beside it, the raw-LXC floor at the same N: the same containers started with the lxc
bindings alone. Then, on 50 fake pnodes (distem.testing.fake: everything but the pnodes' work), the
controller's plan of 10,000 vnodes: time, memory, operations per pnode and bytes sent to each.

Results go to benchmarks/results/scale.md (and scale.csv).

    .venv/bin/python benchmarks/scale.py [--sizes 100 300 1000 1100] [--only local floor plan]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from pathlib import Path

import lxc
import pandas as pd

import distem
from distem.agent import cgroups
from distem.testing.fake import fake_platform

RESULTS = Path(__file__).parent / "results"
PER_START_BATCH = 100
FLOOR_MOST = 1000  # the floor's one bridge holds 1,023 ports (distem's vnetwork takes more bridges past 1,000)
SETTLE_S = 10  # between runs: the kernel tears the last run's network namespaces down in the background


def meminfo(key: str = "MemAvailable") -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))


def process_figures(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of process ``pid``."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def local_run(n: int, image: str, state_dir: str) -> dict[str, object]:
    names = [f"n{i}" for i in range(n)]
    free_before = meminfo()
    opened = time.perf_counter()
    p = distem.Platform(state_dir=state_dir, progress=False)
    try:
        p.vnetwork("vnet", "10.144.0.0/16")
        t = time.perf_counter()
        p.vnodes_create(names, {"vfilesystem": {"image": image, "shared": True},
                                "vifaces": [{"name": "if0", "vnetwork": "vnet"}]})
        create = time.perf_counter() - t
        rates, t = [], time.perf_counter()
        for k in range(0, n, PER_START_BATCH):
            batch = names[k:k + PER_START_BATCH]
            began = time.perf_counter()
            p.vnodes_start(batch)
            rates.append(len(batch) / (time.perf_counter() - began))
        start = time.perf_counter() - t
        t = time.perf_counter()
        deadline = time.monotonic() + 120
        while not all(p.reachable("n0").values()):
            if time.monotonic() > deadline:
                raise RuntimeError("not every vnode answered n0 within 120 s")
        reach = time.perf_counter() - t
        agent_rss, agent_fds = process_figures(p.sessions["local"].agent_pid)
        per_vnode_mib = (free_before - meminfo()) / n / 2**20
        rng = random.Random(7)
        matrix = pd.DataFrame([[0.0 if i == j else float(rng.randint(1, 50)) for j in range(n)] for i in range(n)],
                              index=names, columns=names)
        t = time.perf_counter()
        p.latencies = matrix
        matrix_s = time.perf_counter() - t
        cell = []
        for k in range(5):
            t = time.perf_counter()
            p.set_peers_latencies(["n1", "n2"], [[0, 60 + k], [matrix.loc["n2", "n1"], 0]])
            cell.append(time.perf_counter() - t)
        controller_rss, _ = process_figures(os.getpid())
    finally:
        t = time.perf_counter()
        p.close()
        clean = time.perf_counter() - t
    return {"vnodes": n, "create s": round(create, 2), "start s": round(start, 2),
            "start rate first 100 /s": round(rates[0]), "start rate last 100 /s": round(rates[-1]),
            "all reached s": round(reach, 2), "matrix s": round(matrix_s, 2),
            "one cell ms": round(1000 * statistics.median(cell), 1), "clean s": round(clean, 2),
            "memory per vnode MiB": round(per_vnode_mib, 2), "agent RSS MiB": round(agent_rss),
            "agent fds": agent_fds, "controller RSS MiB": round(controller_rss),
            "total s": round(time.perf_counter() - opened, 1)}


def floor_run(n: int, image: str) -> dict[str, object]:
    """The same containers with nothing but the lxc bindings: one rootfs directory, a veth each on one bridge,
    IPv6 off on it as distem does; the start rate per 100."""
    work = Path(tempfile.mkdtemp(prefix="distem-scale-floor-"))
    rootfs, lxcpath, bridge = work / "rootfs", work / "lxc", "dscalefb0"
    rootfs.mkdir()
    subprocess.run(["tar", "-xpf", image, "-C", str(rootfs)], check=True)
    subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
    subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
    home = cgroups.current()
    started: list[lxc.Container] = []
    try:
        rates = []
        for k in range(0, n, PER_START_BATCH):
            began = time.perf_counter()
            for i in range(k, min(n, k + PER_START_BATCH)):
                (lxcpath / f"f{i}").mkdir(parents=True)
                (lxcpath / f"f{i}" / "config").write_text(
                    f"lxc.uts.name = f{i}\nlxc.rootfs.path = dir:{rootfs}\n"
                    "lxc.mount.auto = proc:mixed sys:ro cgroup:mixed\nlxc.autodev = 1\nlxc.tty.max = 0\n"
                    f"lxc.pty.max = 16\nlxc.console.path = none\nlxc.cgroup.dir.container = distem-floor/f{i}\n"
                    f"lxc.cgroup.dir.monitor = distem-floor/m{i}\nlxc.cgroup.dir.monitor.pivot = distem-floor/pivot\n"
                    f"lxc.net.0.type = veth\nlxc.net.0.link = {bridge}\nlxc.net.0.veth.pair = dscalef{i}\n"
                    f"lxc.net.0.flags = up\nlxc.net.0.name = if0\n"
                    f"lxc.net.0.ipv4.address = 10.146.{i // 250}.{i % 250 + 1}/16 10.146.255.255\n"
                    "lxc.sysctl.net.ipv6.conf.if0.disable_ipv6 = 1\nlxc.init.cmd = /sbin/init\n")
                c = lxc.Container(f"f{i}", str(lxcpath))
                if not c.start():
                    raise RuntimeError(f"raw lxc could not start f{i}")
                started.append(c)
            rates.append((min(n, k + PER_START_BATCH) - k) / (time.perf_counter() - began))
        return {"vnodes": n, "floor rate first 100 /s": round(rates[0]), "floor rate last 100 /s": round(rates[-1])}
    finally:
        for c in started:
            try:
                os.kill(c.init_pid, 9)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.monotonic() + 30
        while any(c.running for c in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        cgroups.enter(home)  # LXC moved us into the last container's monitor cgroup
        subprocess.run(["ip", "link", "del", bridge], check=False)
        shutil.rmtree(work)
        cgroups.remove_subtree("distem-floor")


def plan_run(vnodes: int = 10_000, pnodes: int = 50, matrix_sample: int = 300) -> list[dict[str, object]]:
    """The controller's side of a 10,000-vnode platform on 50 fake pnodes, and what a dense matrix costs it."""
    image = Path(tempfile.mkdtemp(prefix="distem-scale-plan-")) / "image.tar"
    image.write_bytes(b"the fake pnodes do not extract it")
    rows = []
    tracemalloc.start()
    t = time.perf_counter()
    p = fake_platform([f"p{i}" for i in range(pnodes)])
    try:
        p.vnetwork("vnet", "10.0.0.0/16", network_type="vxlan")
        names = [f"v{i}" for i in range(vnodes)]
        for k, name in enumerate(names):
            p.vnode(name).image(str(image), shared=True).iface("if0", "vnet").host(f"p{k % pnodes}")
        described = time.perf_counter() - t
        t = time.perf_counter()
        p.deploy()
        deployed = time.perf_counter() - t
        memory = tracemalloc.get_traced_memory()[1] / 2**20
        sent = pd.DataFrame([{"pnode": e["pnode"], "ops": len(e["args"].get("ops", e["args"].get("names", []))),
                              "bytes": len(json.dumps(e["args"]))} for e in p.pool.sent]).groupby("pnode").sum()
        rows.append({"measure": f"plan {vnodes:,} vnodes on {pnodes} fake pnodes",
                     "value": f"{described + deployed:.1f} s", "note": f"describe {described:.1f} s, plan, send and "
                     f"start {deployed:.1f} s; peak traced memory {memory:.0f} MiB; per pnode "
                     f"{sent.ops.median():,.0f} operations, {sent.bytes.median() / 2**20:.2f} MiB (JSON of the wire form)"})
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        sample = names[:matrix_sample]
        t = time.perf_counter()
        p.latencies = pd.DataFrame(10.0, index=sample, columns=sample)
        took = time.perf_counter() - t
        held = (tracemalloc.get_traced_memory()[0] - before) / (matrix_sample * (matrix_sample - 1))
        rows.append({"measure": f"a dense {matrix_sample:,} x {matrix_sample:,} matrix among them",
                     "value": f"{took:.1f} s", "note": f"{held:.0f} B a cell held by the controller (a dict of "
                     f"non-zero cells): {vnodes:,} x {vnodes:,} would be {held * vnodes * (vnodes - 1) / 2**30:.0f} GiB"})
    finally:
        p.close()
        tracemalloc.stop()
        shutil.rmtree(image.parent)
    return rows


def write(local: list[dict], floor: list[dict], plan: list[dict]) -> None:
    RESULTS.mkdir(exist_ok=True)
    kernel = os.uname().release
    lines = ["# Scale (one pnode; the plan on 50 fake pnodes)", "",
             f"Kernel {kernel}, {os.cpu_count()} cores, {meminfo('MemTotal') / 2**30:.0f} GiB; busybox vnodes sharing one "
             "filesystem, one vnetwork. Start rates per 100 vnodes as they come up; the floor: the same "
             f"containers with the lxc bindings alone, in the same run, up to {FLOOR_MOST} (one bridge). The "
             "matrix: every pair a random delay of 1-50 ms (the userspace delay line: this kernel has no netem).", ""]
    if local:
        table = pd.DataFrame(local).set_index("vnodes")
        if floor:
            table = table.join(pd.DataFrame(floor).set_index("vnodes"))
        table.to_csv(RESULTS / "scale.csv")
        lines += [table.to_markdown(), ""]
    if plan:
        lines += [pd.DataFrame(plan).to_markdown(index=False), ""]
    (RESULTS / "scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300, 1000, 1100])
    parser.add_argument("--only", nargs="+", choices=["local", "floor", "plan"], default=["local", "floor", "plan"])
    args = parser.parse_args()
    image = str(distem.images.busybox())
    local, floor, plan = [], [], []
    with tempfile.TemporaryDirectory(prefix="distem-scale-") as state_dir:
        for n in args.sizes:
            if "floor" in args.only and n <= FLOOR_MOST:  # first: a distem run's namespaces take seconds to go
                floor.append(floor_run(n, image))
                print(floor[-1], flush=True)
                time.sleep(SETTLE_S)
            if "local" in args.only:
                local.append(local_run(n, image, state_dir))
                print(local[-1], flush=True)
                time.sleep(SETTLE_S)
    if "plan" in args.only:
        plan = plan_run()
    write(local, floor, plan)


if __name__ == "__main__":
    main()
