"""Assertions on what a platform delivers, measured: each fails with a table of what is off.

    assert_latencies_within(p, rel=0.05)                 every pair's RTT against the matrix and interface delays
    assert_throughput_within(p, "a", "b", "50mbps")      iperf3's goodput against a rate (less TCP/IP headers)

Both return what they measured, for the test to keep or look at further.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..model.units import parse_rate

GOODPUT = 1448 / 1514  # TCP payload per Ethernet frame at MTU 1500, timestamps on: what iperf3 counts of a rate


def assert_latencies_within(platform: Any, rel: float = 0.05, slack_ms: float = 0.5,
                            vnodes: Sequence[str] | None = None, count: int = 10) -> pd.DataFrame:
    """Every ordered pair's measured RTT within ``rel`` of the requested one (or ``slack_ms``), as
    ``compare_latencies`` judges it (a pair off is measured once more before it counts).

    Raises:
        AssertionError: naming the pairs off, with requested, measured and error, as a table.
    """
    compared = platform.compare_latencies(vnodes, count=count, rel=rel, slack_ms=slack_ms)
    off = compared[~compared["ok"]]
    if len(off):
        busy = compared.attrs.get("pnode_busy", {})
        raise AssertionError(
            f"{len(off)} of {len(compared)} pairs have an RTT off by more than {rel:.0%} (or {slack_ms} ms)"
            + (f"; pnodes busy: {', '.join(f'{p} {b:.0%}' for p, b in busy.items())}" if busy else "") + ":\n"
            + off[["requested_rtt_ms", "measured_rtt_ms", "error_ms", "measured_twice"]].round(3).to_string())
    return compared


def assert_throughput_within(platform: Any, source: str, destination: str, rate: str | int, rel: float = 0.05,
                             seconds: float = 5) -> pd.Series:
    """iperf3 from ``source`` to ``destination``: the goodput within ``rel`` of ``rate`` less TCP/IP headers
    (x 1448/1514), in the run as a whole and in each whole second but the first (TCP's start).

    Raises:
        AssertionError: the rate asked and expected, what was measured, each second's figure.
    """
    expected = parse_rate(rate, "rate") * GOODPUT
    got = platform.measure_throughput(source, destination, seconds=seconds)
    steady = got["intervals_bps"][1:-1] or got["intervals_bps"]  # not TCP's start, nor a last partial second
    worst = max(steady + [got["received_bps"]], key=lambda bps: abs(bps - expected))
    if abs(worst - expected) > rel * expected:
        table = pd.DataFrame({"Mbit/s": [b / 1e6 for b in got["intervals_bps"]]},
                             index=pd.RangeIndex(1, len(got["intervals_bps"]) + 1, name="second"))
        raise AssertionError(f"{source} -> {destination}: {got['received_bps'] / 1e6:.2f} Mbit/s received, "
                             f"{expected / 1e6:.2f} expected ({rate} less headers) within {rel:.0%}; the worst "
                             f"second {worst / 1e6:.2f}; retransmits {got['retransmits']}:\n" + table.round(2).to_string())
    return got
