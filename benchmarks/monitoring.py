"""Monitoring: what sampling costs the pnode, what an hour of samples weighs, how long fetching it takes.

    .venv/bin/python benchmarks/monitoring.py  -> benchmarks/results/monitoring.md (and .csv)

Cost rows: 100 started busybox vnodes (30 in the user-mode guest: 100 and an hour of rows exhaust
its host-side memory maps), each with a shaped output (so that each has an ifb and a
tc tree to dump). The agent's CPU time (utime + stime of its process, from /proc) is read over
WINDOW s unmonitored, then over WINDOW s sampled every second, in the same run and on the same
platform; the difference is the sampling's cost, as a fraction of one core. The sampler's own
thread time (``p.metrics.attrs['sampler_cpu']``) is given beside it.

Hour rows: the same platform's sampler run at 10 ms until it has taken 3,600 rows — what one
hour at 1 s holds — then fetched and turned into the tidy frame with rates (``p.metrics``). The
size is what crossed the channel; per vnode and hour follows from it.
"""

from __future__ import annotations

import os
import time

import distem
from distem.platform.monitor import _Rows, _Series
from guest import host_and_guest
from matrix import platform, timed

VNODES, WINDOW, HOUR_ROWS = {"host": 100, "guest": 30}, 30.0, 3600


def agent_cpu_s(p: distem.Platform) -> float:
    pid = p.sessions["local"].agent_pid
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cost_over(p: distem.Platform, seconds: float) -> float:
    before = agent_cpu_s(p)
    time.sleep(seconds)
    return (agent_cpu_s(p) - before) / seconds


def measure(part: str) -> list[dict]:
    kernel = f"{part} {os.uname().release}"
    vnodes = VNODES[part]
    names = [f"n{i}" for i in range(vnodes)]
    rows = []
    with platform(names) as p:
        for name in names:
            p.voutput_update(name, "if0", {"bandwidth": {"rate": "100mbps"}})
        quiet = cost_over(p, WINDOW)
        p.monitor_start(1.0)
        watched = cost_over(p, WINDOW)
        frame = p.metrics
        p.monitor_stop()
        sampler = frame.attrs["sampler_cpu"]["local"]
        per_tick = sampler * 1000  # ms of thread time per 1 s tick
        rows.append({"kernel": kernel, "measure": f"sampling {vnodes} vnodes every 1 s",
                     "value": f"{100 * (watched - quiet):.2f}% of a core",
                     "note": f"agent {100 * quiet:.2f}% unmonitored, {100 * watched:.2f}% monitored over {WINDOW:.0f} s "
                             f"each; the sampler thread's own time {100 * sampler:.2f}% ({per_tick:.1f} ms a tick)"})
        keys = frame.groupby("metric", observed=True).size()
        rows.append({"kernel": kernel, "measure": "numbers sampled per tick",
                     "value": f"{len(frame[frame.time == frame.time.max()])} derived",
                     "note": f"{len(keys)} metrics: {', '.join(keys.index)}"})

        # An hour's rows, taken fast: the agent's sampler at 10 ms (below the controller's 0.1 s floor).
        epoch = time.time() + 0.2
        p.pool.call("local", "monitor_start", name="hour", interval=0.01, epoch=epoch, max_mb=1024,
                    devices=[f"d{p.id}v"], queues=[f"d{p.id}f"], platform=True, system=True)
        began = time.monotonic()
        while (status := p.pool.call("local", "monitor_status", name="hour"))["buffered_rows"] < HOUR_ROWS:
            time.sleep(0.5)
        p.pool.call("local", "monitor_stop", name="hour")
        took = time.monotonic() - began
        p._monitor.series["hour"] = _Series(0.01, epoch, {"local": _Rows()})
        fetch = timed(lambda: p._monitor.fetch("hour"))[0]
        build, hour = timed(lambda: p._monitor.frame(name="hour"))
        stored = p.pool.call("local", "monitor_status", name="hour")
        size = status["buffered_bytes"] * HOUR_ROWS / status["buffered_rows"]
        rows.append({"kernel": kernel, "measure": f"an hour at 1 s ({HOUR_ROWS} rows, {vnodes} vnodes)",
                     "value": f"{fetch + build:.2f} s to fetch and tidy",
                     "note": f"fetch {fetch:.2f} s ({size / 1e6:.1f} MB), tidy frame with rates {build:.2f} s "
                             f"({len(hour):,} rows); {size / vnodes / 1e6:.2f} MB per vnode-hour on the pnode; "
                             f"rows taken at 10 ms in {took:.0f} s; left on the pnode {stored['buffered_rows']}"})
        print(rows, flush=True)
    return rows


if __name__ == "__main__":
    host_and_guest(__file__, "monitoring", "Monitoring", measure)
