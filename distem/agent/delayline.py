"""The userspace delay line: delay, jitter and loss on pnodes whose kernel has no sch_netem.

One process per platform and pnode. iptables rules in the platform's chain
(jumped to from FORWARD, which sees bridged packets through br_netfilter)
send the packets of each shaped viface direction to one NFQUEUE; this process
holds each packet for its delay, then accepts it, or drops it for loss. A
packet's parameters come from its two bridge ports: the sending vnode's
host-side veth (``physindev``: that vnode's ``output``) and the receiving
vnode's (``physoutdev``: its ``input``). When both are shaped the delays add
and the losses compound, as two netems in series would. Packets are held on
the pnode's bridged path, never in the sender's own output path, where TCP
small queues would see the delay and collapse the throughput.

Jitter draws each packet's delay uniformly in ``delay ± jitter`` (netem's
default distribution); packets leave in order of their due time, so jitter
reorders as netem's does. Reordering is netem's too (``reorder P`` with its
default gap of 1): a packet skips the port's delay with probability P, so it
overtakes the packets held before it. Duplication and corruption are not
done here: a verdict accepts or drops the kernel's one copy of a packet.

Runs as its own program, started by the agent (``userspace.py``)::

    python delayline.py --queue N --control ADDRESS [--max-held P]

It prints one JSON line when its queue is bound (``{"queue": n}``, the first
free number from N) and then serves. Control: JSON datagrams on the Unix
socket ADDRESS (a leading "@" means Linux's abstract namespace), each
answered with ``{"ok": true, ...}`` or ``{"ok": false, "error": ...}``::

    {"op": "set", "device": "d1a2b3cv0i0", "direction": "output",
     "delay_us": 10000, "jitter_us": 0, "loss_ppm": 0, "reorder_ppm": 0}
    {"op": "cells", "device": "d1a2b3cv0i0", "destinations": {"10.144.0.7": 30000}, "drop": ["10.144.0.9"]}
    {"op": "clear", "device": ..., "direction": ...}
    {"op": "stats"}

``cells`` changes some of an output port's latency-matrix delays and leaves
the others: a one-cell change costs the same whatever the number of
destinations, and a table too big for one datagram goes in pieces.

Standard library and netfilterqueue only, and no sibling import: the agent
writes this file's source next to its journal and runs it with its own
interpreter. ``request`` is the client side, used by the agent and by undo.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import json
import os
import random
import select
import socket
import sys
import time
from typing import Any

DIRECTIONS = ("output", "input")
DEFAULT_MAX_HELD = 100_000  # packets held at once (the kernel's queue length): beyond, the kernel drops
SOCKET_BUFFER = 2 << 20  # metadata of queued packets not read yet: bursts; an overload then drops, not waits
CONTROL_EVERY = 256  # under a packet flood, look at the control socket every this many packets
TIMER_SLACK_NS = 1_000  # the default 50 us slack would be our error floor
NICE = -10  # CFS weight ~10x a vnode's process: wakes up and runs ahead of them (not real-time: can't starve them)
MESSAGE_BYTES = 65536  # the largest control datagram read
PIECE = 1024  # destinations per control message: at most ~32 kB of JSON, well under MESSAGE_BYTES
MAX_ADVANCE = 0.0001  # s: the most a wake-up's lateness is taken to be (45 us measured on an idle VM)


def _address(address: str) -> str | bytes:
    return b"\0" + address[1:].encode() if address.startswith("@") else address


def request(address: str, message: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
    """Send one control message to the delay line at ``address``; its answer.

    Raises:
        OSError: no delay line there (ECONNREFUSED / ENOENT), or no answer in time.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"")  # an autobound abstract address, so the answer can come back
        sock.settimeout(timeout)
        sock.sendto(json.dumps(message).encode(), _address(address))
        return json.loads(sock.recv(MESSAGE_BYTES))


def set_messages(device: str, direction: str, limits: dict[str, Any]) -> list[dict[str, Any]]:
    """The control messages that give one direction ``limits``: ``set``, then the latency-matrix table
    (``limits["destinations"]``) beyond its first PIECE in ``cells`` pieces, each one datagram."""
    table = sorted(limits.get("destinations", {}).items())
    first = {**limits, "destinations": dict(table[:PIECE])} if table else limits
    return [{"op": "set", "device": device, "direction": direction, **first}] + cells_messages(device, table[PIECE:], [])


def cells_messages(device: str, table: list[tuple[str, int]], drop: list[str]) -> list[dict[str, Any]]:
    """``cells`` messages that set ``table`` (address, us) and drop ``drop`` on ``device``'s output, PIECE a message."""
    return [{"op": "cells", "device": device, "destinations": dict(table[k:k + PIECE]), "drop": drop[k:k + PIECE]}
            for k in range(0, max(len(table), len(drop)), PIECE)]


class DelayLine:
    """The packet scheduler: per-port parameters, a heap of held packets ordered by due time."""

    def __init__(self) -> None:
        # (direction, ifindex) -> (delay_s, jitter_s, loss_probability, reorder_probability)
        self.params: dict[tuple[str, int], tuple[float, float, float, float]] = {}
        self.index: dict[tuple[str, str], int] = {}  # (direction, device) -> ifindex
        # sending ifindex -> {destination IPv4 address (4 bytes): delay_s}: the latency matrix
        self.matrix: dict[int, dict[bytes, float]] = {}
        self.held: list[tuple[float, int, Any]] = []
        self.seq = 0
        self.counts = {"received": 0, "dropped": 0, "accepted": 0, "max_held": 0}
        self.late_sum = 0.0
        self.late_max = 0.0
        self.random = random.Random()
        self.between: Any = None  # called every CONTROL_EVERY packets (serve: read control messages)
        self.advance = 0.0  # s: how early serve() asks to be woken (its learned wake-up lateness)

    # -- control ---------------------------------------------------------------------
    def set(self, device: str, direction: str, delay_us: int, jitter_us: int = 0, loss_ppm: int = 0,
            reorder_ppm: int = 0, destinations: dict[str, int] | None = None) -> dict[str, Any]:
        """``destinations`` (output only): the latency matrix's extra delay per address, us."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {DIRECTIONS}")
        if not 0 <= jitter_us <= delay_us or not 0 <= loss_ppm <= 1_000_000 or not 0 <= reorder_ppm <= 1_000_000:
            raise ValueError("expected 0 <= jitter <= delay and probabilities between 0 and 1e6 ppm")
        ifindex = socket.if_nametoindex(device)
        old = self.index.pop((direction, device), None)
        if old is not None:
            self.params.pop((direction, old), None)
            if direction == "output":
                self.matrix.pop(old, None)
        if destinations:
            self.matrix[ifindex] = {socket.inet_aton(a): us / 1e6 for a, us in destinations.items()}
        self.index[(direction, device)] = ifindex
        self.params[(direction, ifindex)] = (delay_us / 1e6, jitter_us / 1e6, loss_ppm / 1e6, reorder_ppm / 1e6)
        return {"ifindex": ifindex}

    def cells(self, device: str, destinations: dict[str, int], drop: list[str]) -> dict[str, Any]:
        """Some of ``device``'s latency-matrix delays (us) set, others (``drop``) removed."""
        ifindex = self.index.get(("output", device))
        if ifindex is None:
            raise ValueError(f"{device}'s output is not in the delay line (set it first)")
        table = self.matrix.setdefault(ifindex, {})
        table.update((socket.inet_aton(a), us / 1e6) for a, us in destinations.items())
        for address in drop:
            table.pop(socket.inet_aton(address), None)
        if not table:
            del self.matrix[ifindex]
        return {"ifindex": ifindex, "destinations": len(table)}

    def clear(self, device: str, direction: str) -> dict[str, Any]:
        ifindex = self.index.pop((direction, device), None)
        if ifindex is not None:
            self.params.pop((direction, ifindex), None)
            if direction == "output":
                self.matrix.pop(ifindex, None)
        return {"ifindex": ifindex}

    def stats(self) -> dict[str, Any]:
        released = max(1, self.counts["accepted"])
        return {**self.counts, "held": len(self.held), "late_mean_us": 1e6 * self.late_sum / released,
                "late_max_us": 1e6 * self.late_max, "advance_us": 1e6 * self.advance, "ports": {f"{d}:{dev}": i for (d, dev), i in self.index.items()}}

    def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        if op == "set":
            return self.set(message["device"], message["direction"], int(message["delay_us"]),
                            int(message.get("jitter_us", 0)), int(message.get("loss_ppm", 0)),
                            int(message.get("reorder_ppm", 0)), message.get("destinations"))
        if op == "cells":
            return self.cells(message["device"], message.get("destinations", {}), message.get("drop", []))
        if op == "clear":
            return self.clear(message["device"], message["direction"])
        if op == "stats":
            return self.stats()
        raise ValueError(f"unknown operation {op!r}")

    # -- packets ---------------------------------------------------------------------
    def release(self, now: float) -> None:
        held = self.held
        while held and held[0][0] <= now:
            due, _, packet = heapq.heappop(held)
            packet.accept()
            late = now - due
            self.late_sum += late
            if late > self.late_max:
                self.late_max = late
            self.counts["accepted"] += 1

    def on_packet(self, packet: Any) -> None:
        now = time.monotonic()
        self.release(now)  # under load, packets keep arriving: release between them too
        self.counts["received"] += 1
        if self.between is not None and not self.counts["received"] % CONTROL_EVERY:
            self.between()  # the queue may never run dry: settings must still get through
        delay = 0.0
        for key in (("output", packet.physindev), ("input", packet.physoutdev)):
            p = self.params.get(key)
            if p is None:
                continue
            if p[2] and self.random.random() < p[2]:
                packet.drop()
                self.counts["dropped"] += 1
                return
            if p[3] and self.random.random() < p[3]:
                continue  # reordered: this port sends it at once
            delay += p[0] + (self.random.uniform(-p[1], p[1]) if p[1] else 0.0)
        if self.matrix:
            cells = self.matrix.get(packet.physindev)
            if cells:  # the IPv4 destination: bytes 16-19 of the copied header
                delay += cells.get(packet.get_payload()[16:20], 0.0)
        if delay <= 0:
            packet.accept()
            self.counts["accepted"] += 1
            return
        self.seq += 1
        # We saw the packet about one wake-up late (the same lateness as the timer's): count from then.
        heapq.heappush(self.held, (now + delay - self.advance, self.seq, packet))
        if len(self.held) > self.counts["max_held"]:
            self.counts["max_held"] = len(self.held)


def _timer_slack(ns: int) -> None:
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(29, ns, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


def _bind(queue: Any, line: DelayLine, first: int, max_held: int) -> int:
    """The first queue number from ``first`` that no other process holds."""
    from netfilterqueue import COPY_PACKET

    last_error: OSError | None = None
    for number in range(first, first + 64):
        try:
            # Only the IPv4 header crosses to userspace (the latency matrix needs its destination).
            queue.bind(number % 65536, line.on_packet, max_len=max_held, mode=COPY_PACKET, range=20,
                       sock_len=SOCKET_BUFFER)
            return number % 65536
        except OSError as exc:
            last_error = exc
    raise OSError(f"no free NFQUEUE number in {first}..{first + 63}: {last_error}")


def serve(first_queue: int, control: str, max_held: int = DEFAULT_MAX_HELD) -> None:
    import warnings

    from netfilterqueue import NetfilterQueue

    warnings.simplefilter("ignore", RuntimeWarning)  # a smaller socket buffer than asked is not fatal
    _timer_slack(TIMER_SLACK_NS)
    try:  # the line is the wire: when vnodes keep the cores busy, it must still run on time
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError:
        pass
    line = DelayLine()
    queue = NetfilterQueue()
    number = _bind(queue, line, first_queue, max_held)
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    address = _address(control)
    if isinstance(address, str) and os.path.exists(address):
        os.unlink(address)
    ctl.bind(address)
    ctl.setblocking(False)
    line.between = lambda: _control(ctl, line)
    gc.collect()
    gc.freeze()  # held packets are long-lived: keep the collector off the packet path
    print(json.dumps({"queue": number, "pid": os.getpid()}), flush=True)
    fd = queue.get_fd()
    held = line.held
    line.advance = advance = 0.0  # how late select() wakes up, learned: we ask to be woken that much early
    while True:
        # select() sleeps with microsecond precision (epoll's timeout rounds up to milliseconds).
        timeout = target = None
        if held:
            target = held[0][0] - advance
            timeout = max(0.0, target - time.monotonic())
        ready, _, _ = select.select([fd, ctl], [], [], timeout)
        if fd in ready:
            queue.run(block=False)
        if ctl in ready:
            _control(ctl, line)
        now = time.monotonic()
        if not ready and timeout and target is not None:  # a whole sleep: how late did it end?
            # A preempted process oversleeps by milliseconds: such samples say nothing of the wake-up.
            late = min(MAX_ADVANCE, max(0.0, now - target))
            line.advance = advance = advance + 0.1 * (late - advance)
        # What falls due within one wake-up's lateness goes now: on time on average, and no spinning.
        line.release(now + advance)


def _control(ctl: socket.socket, line: DelayLine) -> None:
    while True:
        try:
            data, sender = ctl.recvfrom(MESSAGE_BYTES)
        except BlockingIOError:
            return
        try:
            answer = {"ok": True, **line.handle(json.loads(data))}
        except (ValueError, KeyError, TypeError, OSError) as exc:
            answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        try:
            ctl.sendto(json.dumps(answer).encode(), sender)
        except OSError:
            pass  # the asker is gone


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="distem's userspace delay line (NFQUEUE)")
    parser.add_argument("--queue", type=int, required=True, help="first NFQUEUE number to try")
    parser.add_argument("--control", required=True, help="Unix socket address ('@name': abstract)")
    parser.add_argument("--max-held", type=int, default=DEFAULT_MAX_HELD)
    args = parser.parse_args(argv)
    try:
        serve(args.queue, args.control, args.max_held)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
