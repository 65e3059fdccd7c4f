"""Latency matrix at scale, in the UML guest (it needs sch_netem): time to apply a random matrix
(one-way 10-59 ms) to N = 10, 50, 100, 200 vnodes, ours vs what Distem does (one `tc` process
per class, leaf and filter; filters in a linear list), and the per-packet cost of classification
(RTT to one peer with 10 vs 1,000 destinations installed, hash table vs linear list).

    .venv/bin/python benchmarks/matrix.py      -> benchmarks/results/matrix.md (and .csv)

The baseline is timed on up to BASELINE_SOURCES source vnodes and scaled to N (its cost is
the same for each source); the row says so.
"""

from __future__ import annotations

import random
import statistics
import subprocess
import tempfile
import time

import distem
from distem.model.names import ifb_name
from distem.plan.matrix import DeviceMatrix, allocate, device_plan
from distem.model.links import LinkLimits
from guest import host_and_guest

SIZES = (10, 50, 100, 200)
BASELINE_SOURCES = 5


def tc(*args: str) -> None:
    subprocess.run(["tc", *args], check=True, capture_output=True)


def distem_like(p: distem.Platform, source: str, matrix_row: dict[str, int]) -> None:
    """Distem's way for one source: an htb class and a netem qdisc per distinct delay, then one
    u32 filter per destination, each a `tc` process, the filters in one linear list."""
    vnode = p.model.vnode(source)
    dev = ifb_name(p.id, vnode.index, 0)
    tc("qdisc", "replace", "dev", dev, "root", "handle", "1:", "htb", "default", "2")
    tc("class", "replace", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit")
    classes = {}
    for ms in sorted(set(matrix_row.values())):
        minor = f"{0x100 + len(classes):x}"
        classes[ms] = minor
        tc("class", "add", "dev", dev, "parent", "1:1", "classid", f"1:{minor}", "htb", "rate", "10gbit")
        tc("qdisc", "add", "dev", dev, "parent", f"1:{minor}", "handle", f"{minor}:", "netem", "delay", f"{ms}ms")
    for dest, ms in matrix_row.items():
        address = str(p.model.vnode(dest).ifaces[0].address.ip)
        tc("filter", "add", "dev", dev, "parent", "1:", "protocol", "ip", "prio", "1", "u32", "match", "ip", "dst",
           f"{address}/32", "flowid", f"1:{classes[ms]}")


def apply_rows() -> list[dict]:
    rows = []
    for n in SIZES:
        with tempfile.TemporaryDirectory(prefix="distem-bench-") as state_dir:
            p = distem.Platform(state_dir=state_dir, progress=False)
            try:
                p.vnetwork("vnet", "10.144.0.0/16")
                for i in range(n):
                    p.vnode(f"n{i}").image(str(distem.images.busybox()), shared=True).iface("if0", "vnet")
                p.deploy()
                rng = random.Random(n)
                names = [f"n{i}" for i in range(n)]
                matrix = [[0 if i == j else rng.randint(10, 59) for j in range(n)] for i in range(n)]
                started = time.perf_counter()
                p.set_peers_latencies(names, matrix)
                ours = time.perf_counter() - started
                matrix[0][1] = 99 if matrix[0][1] != 99 else 98  # one cell changes
                started = time.perf_counter()
                p.set_peers_latencies(names, matrix)
                one_cell = time.perf_counter() - started
                p.set_peers_latencies(names, [[0] * n for _ in range(n)])  # ours gone: the baseline's turn
                sources = names[:BASELINE_SOURCES]
                started = time.perf_counter()
                for i, source in enumerate(sources):
                    distem_like(p, source, {names[j]: matrix[i][j] for j in range(n) if j != i})
                baseline = (time.perf_counter() - started) * n / len(sources)
            finally:
                p.close()
        rows.append(row := {"measure": f"apply N={n} ({n * (n - 1)} cells)", "ours": f"{ours:.2f} s",
                     "distem-like": f"{baseline:.1f} s (timed on {BASELINE_SOURCES} sources, x{n / BASELINE_SOURCES:g})",
                     "ratio": f"{baseline / ours:.0f}x faster", "note": f"re-apply after 1 cell changed: {one_cell:.3f} s"})
        print("row", row, flush=True)  # the guest's console keeps what was measured if a later part fails
    return rows


def rtt(p: distem.Platform) -> float:
    return statistics.median(p.ping("a", "b", count=400, interval_ms=5).dropna())


def classification_rows() -> list[dict]:
    """RTT a -> b (b's entry 1 us, so it goes through the matrix) with 10 or 1,000 destinations."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="distem-bench-") as state_dir:
        p = distem.Platform(state_dir=state_dir, progress=False)
        try:
            p.vnetwork("vnet", "10.144.0.0/16")
            for name in ("a", "b"):
                p.vnode(name).image(str(distem.images.busybox()), shared=True).iface("if0", "vnet")
            p.deploy()
            p.set_peers_latencies(["a", "b"], [[0, 0.001], [0, 0]])
            b = str(p.model.vnode("b").ifaces[0].address.ip)
            dev = ifb_name(p.id, p.model.vnode("a").index, 0)
            results = {}
            state = p._matrix_applied[("a", 0)]
            for count in (10, 1000):
                fake = {f"10.150.{k // 250}.{k % 250 + 1}": 1 for k in range(count - 1)}
                new = allocate(state, {b: 1, **fake})
                op = device_plan("vnode:a", dev, LinkLimits(), state, new, limits_changed=False)
                p.sessions["local"].call("apply", ops=[op.to_wire()])
                state = new
                results[f"hash, {count} destinations"] = rtt(p)
            p._matrix_applied[("a", 0)] = state
            print("row", results, flush=True)
            for count in (10, 1000):  # the linear list: b's filter after count-1 others (the redirect stays)
                subprocess.run(["tc", "qdisc", "del", "dev", dev, "root"], capture_output=True)
                tc("qdisc", "add", "dev", dev, "root", "handle", "1:", "htb", "default", "2")
                tc("class", "replace", "dev", dev, "parent", "1:", "classid", "1:1", "htb", "rate", "10gbit")
                tc("class", "replace", "dev", dev, "parent", "1:1", "classid", "1:100", "htb", "rate", "10gbit")
                tc("qdisc", "replace", "dev", dev, "parent", "1:100", "handle", "100:", "netem", "delay", "1us")
                batch = "".join(f"filter add dev {dev} parent 1: protocol ip prio 1 u32 match ip dst "
                                f"10.150.{k // 250}.{k % 250 + 1}/32 flowid 1:100\n" for k in range(count - 1))
                batch += f"filter add dev {dev} parent 1: protocol ip prio 1 u32 match ip dst {b}/32 flowid 1:100\n"
                subprocess.run(["tc", "-batch", "-"], input=batch, text=True, check=True, capture_output=True)
                p.ping("a", "b", count=3)
                results[f"linear, {count} destinations"] = rtt(p)
        finally:
            p.close()
    out = []
    for kind in ("hash", "linear"):
        few, many = results[f"{kind}, 10 destinations"], results[f"{kind}, 1000 destinations"]
        out.append({"measure": f"RTT a->b, {kind} ({'ours' if kind == 'hash' else 'distem-like'})",
                    "ours": f"10 dest: {few:.3f} ms", "distem-like": f"1,000 dest: {many:.3f} ms",
                    "ratio": f"{many / few:.2f}x", "note": "1,000 vs 10 destinations installed"})
    return out


def measure(part: str) -> list[dict]:
    return apply_rows() + classification_rows()


if __name__ == "__main__":
    host_and_guest(__file__, "matrix", "Latency matrix at scale (UML guest, sch_netem)", measure, host=False)
