"""Latency matrix at scale: the time to apply a random matrix (one-way 10-59 ms) to N = 10, 50,
100, 200 vnodes, ours vs what Distem does (one `tc` process per class, leaf and filter; filters in
one linear list), and the per-packet cost (RTT a -> b with 10 vs 1,000 destinations installed in
a's table).

    .venv/bin/python benchmarks/matrix.py           -> benchmarks/results/matrix.md (and .csv)
    .venv/bin/python benchmarks/matrix.py one-cell  -> the controller's rows alone, printed (no root, seconds)

Two kernels. This host's (no sch_netem): the same netlink batches as the platform sends with netem,
planned by plan/matrix.py and sent by agent/matrix.py called in this process, but with pfifo leaves
(it times the netlink/tc cost on a real kernel, not delay fidelity), the baseline with pfifo leaves
too, and the userspace delay line that this host really uses for the matrix (``p.latencies = df``).
The UML guest's (sch_netem): the platform's own path, ``p.latencies = df``, netem leaves.
On neither: the controller's part of a one-cell change (planning and checking the ops) at N = 10,
100, 300, on fake pnodes (distem.testing.fake), for an event engine that sends thousands of them.

The baseline is timed on BASELINE_SOURCES source vnodes and scaled to N (each source costs the
same: N-1 filters and one class and leaf per distinct delay); the row says so. The machine is
shared, so the host's timings are the best and median of REPEATS takes and the per-packet rows
interleave their configurations over ROUNDS rounds.
"""

from __future__ import annotations

import functools
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from unittest import mock

import pandas as pd
from pyroute2 import IPBatch, IPRoute

import distem
from distem.agent import matrix as agent_matrix
from distem.agent import netlink_batch
from distem.model.links import LinkLimits
from distem.model.matrix import parse_matrix
from distem.model.names import ifb_name, link_alias, veth_name
from distem.plan.matrix import DeviceMatrix, allocate, destinations, device_plan
from distem.plan.ops import IfbCreate, RedirectIngress, ShapingClear
from distem.plan.shaping import delay_line_ops, direction_ops
from distem.testing.fake import fake_platform
from guest import host_and_guest

SIZES = (10, 50, 100, 200)
ONE_CELL_SIZES, ONE_CELL_TAKES = (10, 100, 300), 20
BASELINE_SOURCES = {"host": 10, "guest": 2}  # a tc process costs ~4.4 ms on the host, ~0.2 s in the guest
REPEATS = {"host": 3, "guest": 1}  # takes of each of our apply timings (N = 200 takes minutes in the guest)
PROBES, ROUNDS = 1000, 4  # per-packet rows: fping probes 1 ms apart, per configuration and round
LEAF = {"host": "pfifo", "guest": "netem"}

T = TypeVar("T")
States = dict[tuple[str, int], DeviceMatrix]


@contextmanager
def platform(names: list[str]) -> Iterator[distem.Platform]:
    """Busybox vnodes on one vnetwork, started; everything removed on exit."""
    with tempfile.TemporaryDirectory(prefix="distem-bench-") as state_dir:
        p = distem.Platform(state_dir=state_dir, progress=False)
        try:
            p.vnetwork("vnet", "10.144.0.0/16")
            for name in names:
                p.vnode(name).image(str(distem.images.busybox()), shared=True).iface("if0", "vnet")
            p.deploy()
            yield p
        finally:
            p.close()


def timed(action: Callable[[], T]) -> tuple[float, T]:
    """Seconds taken by ``action`` and what it returned."""
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def frame(names: list[str], matrix: list[list[int]]) -> pd.DataFrame:
    return pd.DataFrame(matrix, index=names, columns=names)


def address(p: distem.Platform, name: str) -> str:
    return str(p.model.vnode(name).ifaces[0].address.ip)


def ifb(p: distem.Platform, name: str) -> str:
    return ifb_name(p.id, p.model.vnode(name).index, 0)


def agent_apply(p: distem.Platform, ops: list) -> None:
    p.sessions["local"].call("apply", ops=[op.to_wire() for op in ops])


# -- the kernel path with netem or pfifo leaves, the agent's own code called in this process ------
def fresh_trees(p: distem.Platform, names: list[str], leaf: str, redirect: bool = False) -> None:
    """An empty output tree (root htb, 1:1, 1:2 and its leaf) on each vnode's ifb, made by the agent
    (so the platform's close removes it); ``redirect``: a's traffic goes through it."""
    ops = []
    for name in names:
        owner, dev = f"vnode:{name}", ifb(p, name)
        ops += [IfbCreate(owner=owner, name=dev, alias=link_alias(p.id)), ShapingClear(owner=owner, device=dev)]
        if redirect:
            ops.append(RedirectIngress(owner=owner, device=veth_name(p.id, p.model.vnode(name).index, 0), ifb=dev))
        ops += direction_ops(owner, dev, None, "netem" if leaf == "netem" else "userspace", keep=True)  # else: pfifo
    agent_apply(p, ops)


def clear_roots(p: distem.Platform, names: list[str]) -> None:
    agent_apply(p, [ShapingClear(owner=f"vnode:{name}", device=ifb(p, name)) for name in names])


@functools.lru_cache
def _pfifo_request(limit: int) -> bytes:
    batch = IPBatch()
    try:
        batch.tc("replace", "pfifo", 1, 0, parent=0, limit=limit)
        return bytes(batch.batch)
    finally:
        batch.close()


def _pfifo_leaf(index: int, handle: int, parent: int, limit: int, lim: dict) -> bytes:
    return netlink_batch.with_tcmsg(_pfifo_request(limit), index, handle, parent)


def kernel_apply(p: distem.Platform, old: States, tables: dict[tuple[str, int], dict[str, int]], leaf: str) -> States:
    """What the platform does with netem for each changed interface (plan/matrix.py's difference,
    agent/matrix.py's one batch per device), with ``leaf`` leaves; the new states."""
    new_states = {}
    with IPRoute() as ipr, mock.patch.object(agent_matrix, "_netem", _pfifo_leaf if leaf == "pfifo" else agent_matrix._netem):
        for key in sorted(set(old) | set(tables)):
            before = old.get(key, DeviceMatrix())
            new_states[key] = allocate(before, tables.get(key, {}))
            op = device_plan(f"vnode:{key[0]}", ifb(p, key[0]), LinkLimits(), before, new_states[key], limits_changed=False)
            if op:
                agent_matrix.matrix_replace(ipr, op.to_wire())
    return new_states


def matrix_tables(p: distem.Platform, names: list[str], matrix: list[list[int]]) -> dict[tuple[str, int], dict[str, int]]:
    return destinations(p.model.vnodes, parse_matrix(names, matrix, list(p.model.vnodes)))


# -- the baseline ------------------------------------------------------------------------------
def distem_like(dev: str, delays_us: dict[str, int], leaf: str) -> list[str]:
    """Distem's way for one source, as tc command lines: an htb class and a leaf per distinct delay,
    then one u32 filter per destination, in one linear list (in this order)."""
    lines = [f"qdisc add dev {dev} root handle 1: htb default 2",
             f"class add dev {dev} parent 1: classid 1:1 htb rate 10gbit"]
    classes: dict[int, str] = {}
    for us in sorted(set(delays_us.values())):
        classes[us] = minor = f"{0x100 + len(classes):x}"
        lines += [f"class add dev {dev} parent 1:1 classid 1:{minor} htb rate 10gbit",
                  f"qdisc add dev {dev} parent 1:{minor} handle {minor}: " + (f"netem delay {us}us" if leaf == "netem" else "pfifo")]
    lines += [f"filter add dev {dev} parent 1: protocol ip prio 1 u32 match ip dst {dst}/32 flowid 1:{classes[us]}"
              for dst, us in delays_us.items()]
    return lines


def tc_each(lines: list[str]) -> None:
    """One tc process per line, as Distem runs them."""
    for line in lines:
        subprocess.run(["tc", *line.split()], check=True, capture_output=True)


def tc_batch(lines: list[str]) -> None:
    subprocess.run(["tc", "-batch", "-"], input="\n".join(lines) + "\n", text=True, check=True, capture_output=True)


# -- applying ----------------------------------------------------------------------------------
def seconds(takes: list[float]) -> str:
    return f"{min(takes):.3f} s" if len(takes) == 1 else f"{min(takes):.3f} s (median {statistics.median(takes):.3f})"


def platform_apply(p: distem.Platform, names: list[str], matrix: list[list[int]], changed: list[list[int]],
                   repeats: int) -> tuple[list[float], float]:
    """``p.latencies = df`` as a user runs it, from no matrix (zeroed between takes), then one cell changed."""
    zero = frame(names, [[0] * len(names) for _ in names])
    takes = []
    for take in range(repeats):
        if take:
            p.latencies = zero
        takes.append(timed(lambda: setattr(p, "latencies", frame(names, matrix)))[0])
    one_cell = timed(lambda: setattr(p, "latencies", frame(names, changed)))[0]
    p.latencies = zero
    return takes, one_cell


def apply_rows(part: str) -> list[dict]:
    leaf, kernel, sources = LEAF[part], f"{part} {os.uname().release}", BASELINE_SOURCES[part]
    rows = []
    for n in SIZES:
        names = [f"n{i}" for i in range(n)]
        rng = random.Random(n)
        matrix = [[0 if i == j else rng.randint(10, 59) for j in range(n)] for i in range(n)]
        changed = [row[:] for row in matrix]
        changed[0][1] = 99  # one cell changes
        what = f"apply N={n} ({n * (n - 1)} cells)"
        with platform(names) as p:
            if part == "host":  # this host's own matrix backend
                takes, one_cell = platform_apply(p, names, matrix, changed, REPEATS[part])
                rows.append({"kernel": kernel, "leaves": "userspace delay line (NFQUEUE)", "measure": what,
                             "ours": seconds(takes), "distem-like": "", "ratio": "",
                             "note": f"p.latencies = df on started vnodes; 1 cell changed: {one_cell:.3f} s"})
                takes = []
                for _ in range(REPEATS[part]):
                    fresh_trees(p, names, leaf)
                    took, states = timed(lambda: kernel_apply(p, {}, matrix_tables(p, names, matrix), leaf))
                    takes.append(took)
                one_cell = timed(lambda: kernel_apply(p, states, matrix_tables(p, names, changed), leaf))[0]
                how = "planned and sent in this process: the netem path's batches, leaves pfifo"
            else:
                takes, one_cell = platform_apply(p, names, matrix, changed, REPEATS[part])
                how = "p.latencies = df on started vnodes (the platform's path)"
            clear_roots(p, names)
            commands = [distem_like(ifb(p, names[i]), {address(p, names[j]): 1000 * matrix[i][j] for j in range(n) if j != i},
                                    leaf) for i in range(sources)]
            baseline = timed(lambda: [tc_each(lines) for lines in commands])[0] * n / sources
        rows.append(row := {"kernel": kernel, "leaves": leaf, "measure": what, "ours": seconds(takes),
                            "distem-like": f"{baseline:.1f} s (timed on {sources} sources, x{n / sources:g})",
                            "ratio": f"{baseline / min(takes):.0f}x faster",
                            "note": f"{how}; 1 cell changed: {one_cell:.3f} s"})
        print("row", row, flush=True)  # the guest's console keeps what was measured if a later part fails
    return rows


def one_cell_rows() -> list[dict]:
    """One changed cell of a full random matrix, on N started vnodes spread over 3 fake pnodes:
    what the controller does (validate, plan, check each op against the wire), nothing applied."""
    rows = []
    with tempfile.TemporaryDirectory(prefix="distem-bench-") as tmp:
        image = os.path.join(tmp, "image.tar")
        with open(image, "wb") as out:
            out.write(b"the fake agent does not extract")
        for n in ONE_CELL_SIZES:
            names = [f"n{i}" for i in range(n)]
            p = fake_platform(["a", "b", "c"])
            try:
                p.vnetwork("vnet", "10.144.0.0/16")
                for i, name in enumerate(names):
                    p.vnode(name).image(image).iface("if0", "vnet").host("abc"[i % 3])
                p.deploy()
                rng = random.Random(n)
                matrix = [[0 if i == j else rng.randint(10, 59) for j in range(n)] for i in range(n)]
                whole = timed(lambda: setattr(p, "latencies", frame(names, matrix)))[0]
                cells = [timed(lambda: p._matrix.set_cells({("n0", "n1"): 1000 * (60 + take % 2)}))[0]
                         for take in range(ONE_CELL_TAKES)]
                frames = []
                for take in range(ONE_CELL_TAKES):
                    matrix[0][1] = 60 + take % 2
                    frames.append(timed(lambda: setattr(p, "latencies", frame(names, matrix)))[0])
            finally:
                p.close()
            rows.append(row := {"kernel": "controller (fake pnodes)", "leaves": "", "measure": f"1 cell changed, N={n}",
                                "ours": f"{min(cells) * 1000:.1f} ms (median {statistics.median(cells) * 1000:.1f})",
                                "distem-like": "", "ratio": "",
                                "note": f"Matrix.set_cells, planning only, best of {ONE_CELL_TAKES}; p.latencies = df "
                                        f"(the N x N frame parsed too): {min(frames):.3f} s; whole matrix: {whole:.3f} s"})
            print("row", row, flush=True)
    return rows


# -- per packet --------------------------------------------------------------------------------
def probe(p: distem.Platform) -> list[float]:
    return list(p.ping("a", "b", count=PROBES, interval_ms=1).dropna())


def per_packet_rows(part: str) -> list[dict]:
    """RTT a -> b (b's entry 1 us, so it goes through the matrix) with 10 or 1,000 destinations in
    a's table, the others made up (10.150.x.y); the configurations interleaved over ROUNDS rounds."""
    leaf, kernel = LEAF[part], f"{part} {os.uname().release}"
    samples: dict[tuple[str, int], list[float]] = defaultdict(list)

    def order(round: int) -> tuple[int, int]:  # alternated, so that a drift within a round evens out
        return (10, 1000) if round % 2 == 0 else (1000, 10)

    def others(count: int) -> dict[str, int]:
        return {f"10.150.{k // 250}.{k % 250 + 1}": 1 for k in range(count - 1)}

    with platform(["a", "b"]) as p:
        b, dev = address(p, "b"), ifb(p, "a")
        if part == "host":  # the delay line: a's output settings carry the table (one control message)
            veth = veth_name(p.id, p.model.vnode("a").index, 0)
            p.set_peers_latencies(["a", "b"], [[0, 0.001], [0, 0]])
            for round in range(ROUNDS):
                for count in order(round):
                    agent_apply(p, delay_line_ops(p.id, "vnode:a", veth, "output", None, {b: 1, **others(count)}))
                    samples["delay line", count] += probe(p)
            p.set_peers_latencies(["a", "b"], [[0, 0], [0, 0]])
        for round in range(ROUNDS):
            fresh_trees(p, ["a"], leaf, redirect=True)
            states: States = {}
            for count in order(round):
                states = kernel_apply(p, states, {("a", 0): {b: 1, **others(count)}}, leaf)
                samples["hash", count] += probe(p)
            for count in order(round):
                clear_roots(p, ["a"])
                tc_batch(distem_like(dev, {**others(count), b: 1}, leaf))  # b's filter last
                samples["linear", count] += probe(p)

    def rtt(kind: str, count: int) -> str:
        values = samples[kind, count]
        return f"{count:,} dest: {statistics.median(values) * 1000:.0f} / {statistics.quantiles(values, n=10)[-1] * 1000:.0f} us"

    def ratio(kind: str) -> str:
        few, many = samples[kind, 10], samples[kind, 1000]
        return (f"{statistics.median(many) / statistics.median(few):.2f}x (p90 "
                f"{statistics.quantiles(many, n=10)[-1] / statistics.quantiles(few, n=10)[-1]:.2f}x)")

    probes = f"RTT a->b median / p90, {len(samples['hash', 10])} probes each, {ROUNDS} interleaved rounds"
    rows = [{"kernel": kernel, "leaves": leaf, "measure": "per packet: 1,000 vs 10 destinations",
             "ours": f"u32 hash: {rtt('hash', 10)}; {rtt('hash', 1000)}",
             "distem-like": f"linear u32: {rtt('linear', 10)}; {rtt('linear', 1000)}",
             "ratio": f"1000/10: ours {ratio('hash')}, distem-like {ratio('linear')}", "note": probes}]
    if part == "host":
        rows.append({"kernel": kernel, "leaves": "userspace delay line (NFQUEUE)",
                     "measure": "per packet: 1,000 vs 10 destinations",
                     "ours": f"dict lookup: {rtt('delay line', 10)}; {rtt('delay line', 1000)}", "distem-like": "",
                     "ratio": f"1000/10: {ratio('delay line')}", "note": probes})
    for row in rows:
        print("row", row, flush=True)
    return rows


def measure(part: str) -> list[dict]:
    return apply_rows(part) + per_packet_rows(part) + (one_cell_rows() if part == "host" else [])


if __name__ == "__main__":
    if sys.argv[1:] == ["one-cell"]:
        print(pd.DataFrame(one_cell_rows()).to_markdown(index=False))
    else:
        host_and_guest(__file__, "matrix", "Latency matrix at scale", measure)
