"""Time to place 10 / 100 / 1,000 vnodes on 5 / 20 / 50 pnodes, greedy and exact (CP-SAT).

    .venv/bin/python benchmarks/placement.py   -> benchmarks/results/placement.md (and .csv)

Instances (seeded, so every run places the same ones): vnodes of 1-4 cores and
0-2 GiB, in vnetworks of 10, sending 10, 100 or 1,000 Mbit/s; pnodes on one
switch with 10 Gbit/s links, each with 1.5 times its share of the cores and
memory asked (at least what the biggest vnode needs). The exact solver runs
where it can finish in time (at most 1,000 (vnode, pnode) pairs, a budget of
10 deterministic seconds, CP-SAT's own measure of work: wall time varies with
the machine); ``place()`` chooses it by itself up to 200 pairs.
"""

from __future__ import annotations

import math
import os
import platform
import random
import time
from pathlib import Path

import pandas as pd

from distem.errors import MappingError
from distem.model.placement import EXACT_LIMIT, Demand, place, star_topology

RESULTS = Path(__file__).parent / "results"
SIZES = [(n, m) for n in (10, 100, 1000) for m in (5, 20, 50)]
EXACT_UP_TO = 1000  # (vnode, pnode) pairs
TIME_LIMIT = 10.0
GIB, MBIT = 2**30, 10**6


def instance(n: int, m: int, seed: int = 0):
    rng = random.Random(seed * 1_000_003 + n * 101 + m)
    demands = [Demand(name=f"v{i:04d}", cores=rng.randint(1, 4), memory=rng.choice([0, GIB // 2, GIB, 2 * GIB]),
                      outputs=((f"net{i // 10}", rng.choice([10, 100, 1000]) * MBIT),)) for i in range(n)]
    cores = max(4, math.ceil(1.5 * sum(d.cores for d in demands) / m))
    memory = max(2 * GIB, math.ceil(1.5 * sum(d.memory for d in demands) / m))
    return demands, star_topology({f"p{j:02d}": (cores, memory) for j in range(m)}, 10 * 10**9)


def run(n: int, m: int, method: str) -> dict:
    demands, topology = instance(n, m)
    started = time.perf_counter()
    try:
        pl = place(demands, topology, method=method, time_limit=TIME_LIMIT)
    except MappingError as err:
        return {"seconds": round(time.perf_counter() - started, 3), "result": f"none: {len(err.vnodes)} left out"}
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "result": "optimal" if pl.optimal else "valid",
            "pnodes used": pl.pnodes_used, "cross-pnode Gbit/s": round(pl.cross_bps / 1e9, 2)}


def main() -> None:
    rows = []
    for n, m in SIZES:
        for method in ("greedy", "exact"):
            if method == "exact" and n * m > EXACT_UP_TO:
                continue
            row = {"vnodes": n, "pnodes": m, "method": method,
                   "auto picks": "exact" if n * m <= EXACT_LIMIT else "greedy", **run(n, m, method)}
            print(row, flush=True)
            rows.append(row)
    frame = pd.DataFrame(rows)
    RESULTS.mkdir(exist_ok=True)
    frame.to_csv(RESULTS / "placement.csv", index=False)
    (RESULTS / "placement.md").write_text(
        f"# placement benchmark ({platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()})\n\n"
        "Seeded instances (see benchmarks/placement.py): 1-4 cores per vnode, vnetworks of 10, 10/100/1000 Mbit/s,\n"
        f"10 Gbit/s star. exact = CP-SAT, one worker, {TIME_LIMIT:g} deterministic seconds; \"valid\": the best\n"
        "mapping found, not proven optimal. cross-pnode: the traffic between vnodes on different pnodes (the\n"
        "objective's first term), then pnodes used (its second).\n\n"
        + frame.to_markdown(index=False) + "\n")


if __name__ == "__main__":
    main()
