"""Link fidelity, asked vs measured: bandwidth (htb) on this kernel, and delay, jitter and loss by
its userspace delay line when it has no sch_netem; the same on a kernel with sch_netem (the
user-mode Linux guest, run through distem.testing.uml).

    .venv/bin/python benchmarks/links.py      -> benchmarks/results/links.md (and .csv)

Measurements come from inside the vnodes' network namespaces: iperf3 goodput (compared with
the rate times 1448/1514, TCP's payload share of a 1500-byte-MTU frame) and fping RTTs.
"""

from __future__ import annotations

import statistics
import tempfile

import distem
from guest import host_and_guest

GOODPUT = 1448 / 1514


def pair(state_dir: str) -> distem.Platform:
    p = distem.Platform(state_dir=state_dir, progress=False)
    p.vnetwork("vnet", "10.144.0.0/24")
    for name in ("a", "b"):
        p.vnode(name).image(str(distem.images.busybox())).iface("if0", "vnet")
    p.deploy()
    p.ping("a", "b", count=3)
    return p


def bandwidth_rows(p: distem.Platform) -> list[dict]:
    rows = []
    for direction, limited in (("output", "a"), ("input", "b")):
        for mbit in (1, 10, 100, 1000):
            p.viface_update(limited, "if0", {direction: {"bandwidth": f"{mbit}mbps"}})
            got = p.measure_throughput("a", "b", seconds=5)["received_bps"]
            p.viface_update(limited, "if0", {direction: {"bandwidth": None}})
            rows.append({"property": f"bandwidth ({direction})", "asked": f"{mbit} Mbit/s",
                         "measured": f"{got / 1e6:.3f} Mbit/s goodput",
                         "error": f"{100 * (got / (mbit * 1e6 * GOODPUT) - 1):+.2f}%"})
    return rows


def delay_rows(p: distem.Platform) -> list[dict]:
    rows = []
    baseline = p.ping("a", "b", count=20).median()
    for ms in (1, 10, 50, 200):
        p.voutput_update("a", "if0", {"latency": f"{ms}ms"})
        rtt = p.ping("a", "b", count=max(10, min(50, 2000 // ms)), interval_ms=max(10, ms // 4)).median() - baseline
        rows.append({"property": "delay (median RTT added)", "asked": f"{ms} ms", "measured": f"{rtt:.3f} ms",
                     "error": f"{100 * (rtt / ms - 1):+.2f}%"})
    p.voutput_update("a", "if0", {"latency": {"delay": "50ms", "jitter": "10ms"}})
    std = p.ping("a", "b", count=300, interval_ms=5).std()
    rows.append({"property": "jitter (RTT stdev)", "asked": "50 ms ± 10 ms (uniform: 5.774 ms)",
                 "measured": f"{std:.3f} ms", "error": f"{100 * (std / (10 / 3**0.5) - 1):+.2f}%"})
    p.voutput_update("a", "if0", {"latency": {"delay": 0}})
    for percent in (10, 25, 50):
        p.voutput_update("a", "if0", {"loss": percent})
        lost = 100 * p.ping("a", "b", count=5000, interval_ms=1, timeout_ms=500).isna().mean()
        rows.append({"property": "loss (5,000 probes)", "asked": f"{percent}%", "measured": f"{lost:.2f}%",
                     "error": f"{lost - percent:+.2f} points"})
    p.voutput_update("a", "if0", {"loss": 0, "bandwidth": "100mbps", "latency": "50ms"})
    got = p.measure_throughput("a", "b", seconds=10)
    steady = statistics.median(got["intervals_bps"][2:10])
    rows.append({"property": "rate + delay", "asked": "100 Mbit/s + 50 ms", "measured": f"{steady / 1e6:.2f} Mbit/s",
                 "error": f"{100 * (steady / (100e6 * GOODPUT) - 1):+.2f}%"})
    return rows


def measure(part: str) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="distem-bench-") as state_dir:
        p = pair(state_dir)
        try:
            kernel = p.pnodes.loc["local", "kernel"]
            if part == "host":
                rows = [{"backend": "htb", **row} for row in bandwidth_rows(p)]
                if p.backend("local") == "userspace":
                    rows += [{"backend": "userspace", **row} for row in delay_rows(p)]
            else:
                rows = [{"backend": p.backend("local"), **row} for row in delay_rows(p)]
        finally:
            p.close()
    return [{"backend": row.pop("backend"), "kernel": kernel, **row} for row in rows]


if __name__ == "__main__":
    host_and_guest(__file__, "links", "link fidelity", measure)
