"""The delay line's scheduler alone (no queue, no root): which port's settings a packet gets, and when."""

from __future__ import annotations

import socket

import pytest

from distem.agent.delayline import DelayLine

LO = socket.if_nametoindex("lo")


class Packet:
    """What NFQUEUE hands the scheduler: the bridge ports, and the two verdicts."""

    def __init__(self, physindev: int = 0, physoutdev: int = 0) -> None:
        self.physindev, self.physoutdev, self.verdict = physindev, physoutdev, None

    def accept(self) -> None:
        self.verdict = "accept"

    def drop(self) -> None:
        self.verdict = "drop"


def held_delay(line: DelayLine) -> float:
    due, _, _ = line.held[-1]
    return due


def test_a_packet_gets_its_in_port_output_and_its_out_port_input_added():
    line = DelayLine()
    line.set("lo", "output", delay_us=10_000)
    line.set("lo", "input", delay_us=5_000)
    only_out, both, neither = Packet(physindev=LO), Packet(physindev=LO, physoutdev=LO), Packet(physoutdev=99)
    for packet in (only_out, both, neither):
        line.on_packet(packet)
    assert neither.verdict == "accept" and only_out.verdict is None and both.verdict is None
    (d1, _, p1), (d2, _, p2) = sorted(line.held, key=lambda h: h[0])
    assert (p1, p2) == (only_out, both)
    assert d2 - d1 == pytest.approx(0.005, abs=0.002)
    line.release(d2 + 1e-6)
    assert only_out.verdict == both.verdict == "accept" and line.held == []


def test_losses_compound_and_reordering_skips_the_delay():
    line = DelayLine()
    line.random.seed(1)
    line.set("lo", "output", delay_us=1_000, loss_ppm=200_000)
    line.set("lo", "input", delay_us=1_000, loss_ppm=200_000)
    packets = [Packet(physindev=LO, physoutdev=LO) for _ in range(20_000)]
    for packet in packets:
        line.on_packet(packet)
    lost = sum(p.verdict == "drop" for p in packets) / len(packets)
    assert lost == pytest.approx(1 - 0.8 * 0.8, abs=0.015)
    line.set("lo", "output", delay_us=10_000_000, reorder_ppm=500_000)  # none due during the test
    line.clear("lo", "input")
    line.held.clear()
    packets = [Packet(physindev=LO) for _ in range(20_000)]
    for packet in packets:
        line.on_packet(packet)
    assert sum(p.verdict == "accept" for p in packets) / len(packets) == pytest.approx(0.5, abs=0.015)


def test_bad_settings_are_refused():
    line = DelayLine()
    with pytest.raises(ValueError, match="jitter"):
        line.handle({"op": "set", "device": "lo", "direction": "output", "delay_us": 1, "jitter_us": 2})
    with pytest.raises(OSError):
        line.handle({"op": "set", "device": "no-such-dev0", "direction": "output", "delay_us": 1})
    with pytest.raises(ValueError, match="direction"):
        line.handle({"op": "set", "device": "lo", "direction": "sideways", "delay_us": 1})
    assert line.handle({"op": "clear", "device": "lo", "direction": "output"}) == {"ifindex": None}
