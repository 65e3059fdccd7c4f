"""Scale on one pnode, and the plan of a 10,000-vnode platform on 50.

One pnode (this machine): N busybox vnodes (shared filesystem) on one vnetwork, created, started (the
start rate per 100 as they come up), all reached from n0, a latency matrix set on every pair, one cell
changed, and the platform closed; the agent's memory and file descriptors and the machine's memory per
vnode at N. Beside it, the raw-LXC floor at the same N: the same containers started with the lxc
bindings alone. Then, on 50 fake pnodes (distem.testing.fake: everything but the pnodes' work), the
controller's plan of 10,000 vnodes: time, memory, operations per pnode and bytes sent to each.

Results go to benchmarks/results/scale.md (and scale-PART.csv: a run rewrites the parts it ran).

    .venv/bin/python benchmarks/scale.py [--sizes 10 100 300 1000 1100] [--only local cluster most created debian plan]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import lxc
import pandas as pd

import distem
from distem.agent import cgroups
from distem.testing.cluster import local_cluster
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


def reach_all(p: distem.Platform, timeout: float = 120) -> tuple[float, int]:
    """(Seconds until every vnode answered a ping from n0, NaN past ``timeout``; how many answered): one ping
    each a round, as the ARP requests of the first rounds flood every port of the vnetwork and some answers
    come late."""
    t, deadline = time.perf_counter(), time.monotonic() + timeout
    while True:
        answered = sum(p.reachable("n0").values())
        if answered == len(p.model.vnodes) - 1:
            return time.perf_counter() - t, answered
        if time.monotonic() > deadline:
            return float("nan"), answered


def reached(p: distem.Platform) -> float:
    seconds, answered = reach_all(p)
    if answered < len(p.model.vnodes) - 1:
        raise RuntimeError(f"{answered} of {len(p.model.vnodes) - 1} vnodes answered n0 within 120 s")
    return seconds


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
        reach = reached(p)
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


@contextlib.contextmanager
def host_neighbour_room(most: int) -> Iterator[None]:
    """The ARP table's thresholds raised on this machine meanwhile: a local_cluster's pnodes are network
    namespaces, whose agents cannot raise them (all namespaces share the table; an agent in the initial one
    does it for its platform)."""
    paths = [Path(f"/proc/sys/net/ipv4/neigh/default/gc_thresh{k}") for k in (2, 3)]
    before = [p.read_text() for p in paths]
    for path in paths:
        path.write_text(str(max(most, int(path.read_text()))))
    try:
        yield
    finally:
        for path, old in zip(paths, before):
            path.write_text(old)


def cluster_run(n: int, image: str, pnodes: int = 5) -> dict[str, object]:
    """N vnodes on ``pnodes`` pnodes of distem.testing.local_cluster (namespaces, each with its own sshd and
    agent, sharing this machine's 2 cores): one VXLAN vnetwork, started 100 at a time, all reached from n0."""
    names = [f"n{i}" for i in range(n)]
    with local_cluster(pnodes) as members, host_neighbour_room(2 * n + 1024):
        p = distem.Platform(members, progress=False)
        try:
            p.vnetwork("vnet", "10.144.0.0/16", network_type="vxlan")
            t = time.perf_counter()
            p.vnodes_create(names, {"vfilesystem": {"image": image, "shared": True},
                                    "vifaces": [{"name": "if0", "vnetwork": "vnet"}]})
            create = time.perf_counter() - t
            t = time.perf_counter()
            for k in range(0, n, PER_START_BATCH):
                p.vnodes_start(names[k:k + PER_START_BATCH])
            start = time.perf_counter() - t
            reach = reached(p)
        finally:
            t = time.perf_counter()
            p.close()
            clean = time.perf_counter() - t
    return {"vnodes": n, "pnodes": pnodes, "create s": round(create, 2), "start s": round(start, 2),
            "start rate /s": round(n / start), "per pnode /s": round(n / start / pnodes, 1),
            "all reached s": round(reach, 2), "clean s": round(clean, 2)}


def most_run(image: str, most: int, step: int = 500, floor_gib: float = 2.0) -> dict[str, object]:
    """Busybox vnodes (shared filesystem, no matrix) started ``step`` at a time until ``most``, a start
    fails, or less than ``floor_gib`` of memory is left: how far this machine goes and what stops it."""
    free_before, started, stopped_by = meminfo(), 0, f"the benchmark's cap ({most:,})"
    rates = []
    with tempfile.TemporaryDirectory(prefix="distem-scale-most-") as state_dir:
        p = distem.Platform(state_dir=state_dir, progress=False)
        try:
            p.vnetwork("vnet", "10.144.0.0/16")
            while started < most:
                batch = [f"n{i}" for i in range(started, min(most, started + step))]
                p.vnodes_create(batch, {"vfilesystem": {"image": image, "shared": True},
                                        "vifaces": [{"name": "if0", "vnetwork": "vnet"}]})
                t = time.perf_counter()
                try:
                    for k in range(0, len(batch), PER_START_BATCH):
                        p.vnodes_start(batch[k:k + PER_START_BATCH])
                except Exception as exc:  # what stops it is the result
                    stopped_by = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    break
                rates.append(len(batch) / (time.perf_counter() - t))
                started += len(batch)
                print({"running": started, "rate /s": round(rates[-1]), "available GiB":
                       round(meminfo() / 2**30, 1)}, flush=True)
                if meminfo() < floor_gib * 2**30:
                    stopped_by = f"less than {floor_gib} GiB of memory left"
                    break
            per_vnode = (free_before - meminfo()) / max(started, 1) / 2**20
            reach, answered = reach_all(p, timeout=120) if started else (float("nan"), 0)
        finally:
            t = time.perf_counter()
            p.close()
            clean = time.perf_counter() - t
    return {"running": started, "stopped by": stopped_by, "memory per vnode MiB": round(per_vnode, 2),
            f"rate of the last {step} /s": round(rates[-1]) if rates else None,
            "answered n0": answered, "all reached s": round(reach, 1), "clean s": round(clean, 1)}


def created_run(image: str, n: int = 2500, step: int = 500) -> list[dict[str, object]]:
    """The start rate of each ``step`` when all ``n`` vnodes are created first, and when they are created
    ``step`` at a time between starts (as the how-many run does): a vnetwork's further bridges are then
    made after a thousand veths, which LXC once walked at every start to read the bridge's MTU."""
    rows = []
    for order in ("all first", f"{step} at a time"):
        names = [f"n{i}" for i in range(n)]
        description = {"vfilesystem": {"image": image, "shared": True}, "vifaces": [{"name": "if0", "vnetwork": "vnet"}]}
        rates = []
        with tempfile.TemporaryDirectory(prefix="distem-scale-created-") as state_dir:
            p = distem.Platform(state_dir=state_dir, progress=False)
            try:
                p.vnetwork("vnet", "10.144.0.0/16")
                if order == "all first":
                    p.vnodes_create(names, description)
                for k in range(0, n, step):
                    if order != "all first":
                        p.vnodes_create(names[k:k + step], description)
                    t = time.perf_counter()
                    for b in range(k, k + step, PER_START_BATCH):
                        p.vnodes_start(names[b:b + PER_START_BATCH])
                    rates.append(round(step / (time.perf_counter() - t)))
            finally:
                p.close()
        rows.append({"created": order, **{f"rate of {k + 1}-{k + step} /s": r
                                          for k, r in zip(range(0, n, step), rates)}})
        print(rows[-1], flush=True)
        time.sleep(SETTLE_S)
    return rows


def debian_run(n: int = 20) -> dict[str, object]:
    """Memory of Debian vnodes (systemd and sshd, copy-on-write overlay on one image) once all listen on 22."""
    image = str(distem.images.debian("bookworm", progress=False))
    names = [f"d{i}" for i in range(n)]
    with tempfile.TemporaryDirectory(prefix="distem-scale-debian-") as state_dir:
        p = distem.Platform(state_dir=state_dir, progress=False)
        try:
            p.vnetwork("vnet", "10.144.0.0/24")
            p.vnodes_create(names, {"vfilesystem": {"image": image}, "vifaces": [{"name": "if0", "vnetwork": "vnet"}]})
            free_before = meminfo()
            p.vnodes_start(names)
            if not p.wait_vnodes({"timeout": 300, "port": 22}):
                raise RuntimeError("the Debian vnodes did not all listen on port 22 within 300 s")
            time.sleep(SETTLE_S)
            per_vnode = (free_before - meminfo()) / n / 2**20
            cgroup = p.vnodes["memory_mib"].median()
        finally:
            p.close()
    return {"vnodes": n, "machine memory per vnode MiB": round(per_vnode, 1),
            "cgroup memory per vnode MiB (median)": round(float(cgroup), 1)}


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


PARTS = {  # part -> its heading in scale.md; each run rewrites the CSVs of the parts it ran, the page shows all
    "local": "N vnodes on this pnode, with the raw-LXC floor beside them",
    "cluster": "On local_cluster(5): five pnodes (namespaces with their own sshd and agent) on the same 2 cores",
    "most": "How many this machine holds: started 500 at a time until a failure, 2 GiB left, or the cap",
    "created": "Start rate per 500 of 2,500 vnodes: created all first, or 500 at a time between starts",
    "debian": "Debian vnodes (systemd, sshd; an overlay each on one image), once all listen on port 22",
    "plan": "The plan of 10,000 vnodes on 50 fake pnodes (the controller's whole work, the pnodes' none)",
}


def write(results: dict[str, pd.DataFrame]) -> None:
    RESULTS.mkdir(exist_ok=True)
    for part, frame in results.items():
        frame.to_csv(RESULTS / f"scale-{part}.csv", index=False)
    lines = ["# Scale (one pnode; five in namespaces; the plan on 50 fake pnodes)", "",
             f"Kernel {os.uname().release}, {os.cpu_count()} cores, {meminfo('MemTotal') / 2**30:.0f} GiB; busybox "
             "vnodes sharing one filesystem, one vnetwork, unless said. Start rates per 100 vnodes as they come up; the "
             f"floor: the same containers with the lxc bindings alone, in the same run, up to {FLOOR_MOST} (one "
             "bridge). The matrix: every pair a random delay of 1-50 ms (the userspace delay line: this kernel has "
             "no netem).", ""]
    for part, heading in PARTS.items():
        path = RESULTS / f"scale-{part}.csv"
        if path.exists():
            lines += [f"## {heading}", "", pd.read_csv(path).to_markdown(index=False), ""]
    (RESULTS / "scale.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 300, 1000, 1100])
    parser.add_argument("--cluster-size", type=int, default=1000, help="vnodes on local_cluster(5)")
    parser.add_argument("--most", type=int, default=5000, help="the cap of the how-many run")
    parser.add_argument("--only", nargs="+", choices=list(PARTS), default=list(PARTS))
    args = parser.parse_args()
    image = str(distem.images.busybox())
    local, floor = [], []
    results: dict[str, pd.DataFrame] = {}
    with tempfile.TemporaryDirectory(prefix="distem-scale-") as state_dir:
        for n in args.sizes if "local" in args.only else []:
            if n <= FLOOR_MOST:  # first: a distem run's namespaces take seconds to go
                floor.append(floor_run(n, image))
                print(floor[-1], flush=True)
                time.sleep(SETTLE_S)
            local.append(local_run(n, image, state_dir))
            print(local[-1], flush=True)
            time.sleep(SETTLE_S)
    if local:
        results["local"] = pd.DataFrame(local).merge(pd.DataFrame(floor), on="vnodes", how="left")
    runs = {"cluster": lambda: cluster_run(args.cluster_size, image), "most": lambda: most_run(image, args.most),
            "debian": debian_run}
    for part, run in runs.items():
        if part in args.only:
            results[part] = pd.DataFrame([run()])
            print(results[part].to_dict("records"), flush=True)
            time.sleep(SETTLE_S)
    if "created" in args.only:
        results["created"] = pd.DataFrame(created_run(image))
    if "plan" in args.only:
        results["plan"] = pd.DataFrame(plan_run())
    write(results)


if __name__ == "__main__":
    main()
