"""``make demo`` / ``distem demo``: a small degraded platform from a platform file (two regions joined by a
latency matrix, a rate limit, one event during the run) on this machine; what was asked against what
was measured, a heatmap, the run's record; then everything removed."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from ..platform import Platform
from ..platform.drawing import png
from ..platform.records import default_records_dir
from ..testing.fidelity import GOODPUT

PLATFORM_FILE = Path(__file__).with_name("demo.yml")
EVENT_AT_S = 3.0  # demo.yml's event: us-1's output delay, from 0 to 20 ms


def run(state_dir: str = "/var/lib/distem", file: str | Path = PLATFORM_FILE,
        record: str | Path | None = None) -> Path:
    """Run the demo; the record's directory (the heatmap is in it)."""
    started = time.monotonic()
    with Platform.from_record(file, state_dir=state_dir) as p:
        backends = ", ".join(sorted({p.backend(n) for n in p.model.pnodes}))
        print(f"platform {p.id} from {file}: {len(p.model.vnodes)} vnodes on {', '.join(p.model.pnodes)} "
              f"(delays: {backends}), made in {time.monotonic() - started:.1f} s\n", flush=True)
        compared = p.compare_latencies(count=10, interval_ms=20)
        measured = compared["measured_rtt_ms"].unstack().reindex(index=p.latencies.index, columns=p.latencies.index)
        heatmap = png(p.plot_latencies(measured))  # now: the event changes what is asked
        throughput = p.measure_throughput("eu-1", "eu-2", seconds=4)
        p.event_manager_start()
        trace = p.ping("eu-1", "us-1", count=60, interval_ms=100)  # 6 s: the event at 3 s, 0.3 s lead
        p.events_wait(timeout=10)

        pairs = [(a, b) for a, b in compared.index if a < b]
        rows = {f"RTT {a} <-> {b} (ms)": (compared.loc[(a, b), "requested_rtt_ms"],
                                         compared.loc[(a, b), "measured_rtt_ms"]) for a, b in pairs}
        rows["eu-1 -> eu-2 (Mbit/s of payload)"] = (50 * GOODPUT, throughput["received_bps"] / 1e6)
        before, after = trace.iloc[:25].median(), trace.iloc[-25:].median()
        asked_before = compared.loc[("eu-1", "us-1"), "requested_rtt_ms"]
        rows[f"RTT eu-1 -> us-1 before the event (ms)"] = (asked_before, before)
        rows[f"RTT eu-1 -> us-1 after it, us-1 +20 ms (ms)"] = (asked_before + 20, after)
        table = pd.DataFrame(rows, index=["asked", "measured"]).T
        table["error %"] = 100 * (table["measured"] - table["asked"]) / table["asked"]
        with pd.option_context("display.width", 120):
            print(table.round(2).to_string(), end="\n\n")
        print("(the rate: 50 Mbit/s less TCP/IP headers, x 1448/1514; the event: at "
              f"{EVENT_AT_S:g} s, applied {p.events['skew_ms'].iloc[0]:.2f} ms after its instant)\n")

        home = Path(record) if record else default_records_dir() / p.id
        path = p.record(home)
        (path / "heatmap.png").write_bytes(heatmap)
        print(f"heatmap: {path / 'heatmap.png'}\nrecord:  {path}  (bring it up again: distem up {path})")
    print(f"cleaned up; total {time.monotonic() - started:.1f} s")
    return path
