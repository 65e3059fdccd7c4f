"""The delay line's scheduler alone (no queue, no root): which port's settings a packet gets, and when."""

from __future__ import annotations

import socket

import pytest

import ipaddress
import json

from distem.agent.delayline import MESSAGE_BYTES, DelayLine, cells_messages, set_messages

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


def test_cells_change_some_matrix_delays_and_keep_the_others():
    line = DelayLine()
    with pytest.raises(ValueError, match="set it first"):
        line.handle({"op": "cells", "device": "lo", "destinations": {"10.0.0.1": 1}})
    line.set("lo", "output", delay_us=0, destinations={"10.0.0.1": 1000, "10.0.0.2": 2000})
    assert line.handle({"op": "cells", "device": "lo", "destinations": {"10.0.0.3": 3000, "10.0.0.1": 500},
                        "drop": ["10.0.0.2"]}) == {"ifindex": LO, "destinations": 2}
    assert line.matrix[LO] == {socket.inet_aton("10.0.0.1"): 0.0005, socket.inet_aton("10.0.0.3"): 0.003}
    line.cells("lo", {}, ["10.0.0.1", "10.0.0.3"])
    assert LO not in line.matrix  # no table left: packets skip the look-up


def test_a_table_too_big_for_one_datagram_goes_in_pieces():
    """3,000 destinations (one vnode's row at N=3,001): one datagram would be ~100 kB."""
    table = {str(ipaddress.ip_address("10.0.0.0") + k): 1000 + k for k in range(3000)}
    messages = set_messages("lo", "output", {"delay_us": 0, "jitter_us": 0, "loss_ppm": 0, "reorder_ppm": 0,
                                             "destinations": table})
    assert [m["op"] for m in messages] == ["set", "cells", "cells"]
    assert max(len(json.dumps(m).encode()) for m in messages) < MESSAGE_BYTES
    line = DelayLine()
    for message in messages:
        line.handle(message)
    assert line.matrix[LO] == {socket.inet_aton(a): us / 1e6 for a, us in table.items()}
    drop = sorted(table)[:2500]
    assert len(cells_messages("lo", [], drop)) == 3
    for message in cells_messages("lo", [], drop):
        line.handle(message)
    assert len(line.matrix[LO]) == 500


def test_bad_settings_are_refused():
    line = DelayLine()
    with pytest.raises(ValueError, match="jitter"):
        line.handle({"op": "set", "device": "lo", "direction": "output", "delay_us": 1, "jitter_us": 2})
    with pytest.raises(OSError):
        line.handle({"op": "set", "device": "no-such-dev0", "direction": "output", "delay_us": 1})
    with pytest.raises(ValueError, match="direction"):
        line.handle({"op": "set", "device": "lo", "direction": "sideways", "delay_us": 1})
    assert line.handle({"op": "clear", "device": "lo", "direction": "output"}) == {"ifindex": None}
