"""Userspace delay line, two mechanisms measured side by side on this kernel (no sch_netem):

    nfqueue   two netns on a bridge; an iptables FORWARD rule (physdev match on a's port) queues
              a's packets to distem's delay line (distem/agent/delayline.py), which holds each
              one for its delay and then accepts it: the packet stays in the kernel.
    tap       two netns each with a TAP device; a Python relay reads every frame from one TAP,
              holds it for its delay and writes it to the other: the whole wire is in userspace.

Both are single-threaded Python with a heap of due times, the delay on a -> b only. Measured:
RTT added for 1/10/50/200 ms asked (fping, median and stdev over the baseline), TCP goodput at
0 and 50 ms (iperf3, no rate limit), and the packet rate each keeps up with (UDP at rising
offered rates with 10 ms asked, 64-byte payloads, while fping measures the added RTT).

    .venv/bin/python benchmarks/delayline.py      -> benchmarks/results/delayline.md (and .csv)
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import json
import os
import select
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from distem.agent import delayline  # noqa: E402

RESULTS = Path(__file__).parent / "results"
NS = ("dlbench-a", "dlbench-b")
ADDR = ("10.250.0.1", "10.250.0.2")
BRIDGE, PORTS = "dlbenchbr", ("dlbenchva", "dlbenchvb")
TAPS = ("dlbenchta", "dlbenchtb")
QUEUE, CONTROL, COMMENT = 4242, "@distem-delayline-bench", "dlbench"
DELAYS_MS = (1, 10, 50, 200)
RATES_PPS = (5_000, 10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 100_000, 120_000)
UDP_PAYLOAD = 64


def sh(*argv: str, check: bool = True) -> str:
    return subprocess.run(argv, check=check, capture_output=True, text=True).stdout


def in_ns(i: int, *argv: str) -> list[str]:
    return ["ip", "netns", "exec", NS[i], *argv]


# -- the two setups ------------------------------------------------------------------------
def setup_bridge() -> None:
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "link", "set", BRIDGE, "up")
    for i in (0, 1):
        sh("ip", "netns", "add", NS[i])
        sh("ip", "link", "add", PORTS[i], "type", "veth", "peer", "name", "eth0", "netns", NS[i])
        sh("ip", "link", "set", PORTS[i], "master", BRIDGE, "up")
        sh(*in_ns(i, "ip", "addr", "add", f"{ADDR[i]}/24", "dev", "eth0"))
        sh(*in_ns(i, "ip", "link", "set", "eth0", "up"))
        sh(*in_ns(i, "ip", "link", "set", "lo", "up"))


def setup_nfqueue() -> subprocess.Popen:
    setup_bridge()
    proc = subprocess.Popen([sys.executable, delayline.__file__, "--queue", str(QUEUE), "--control", CONTROL],
                            stdout=subprocess.PIPE, text=True)
    json.loads(proc.stdout.readline())
    sh("iptables", "-w", "-I", "FORWARD", "-m", "physdev", "--physdev-in", PORTS[0], "-m", "comment",
       "--comment", COMMENT, "-j", "NFQUEUE", "--queue-num", str(QUEUE), "--queue-bypass")
    return proc


def teardown() -> None:
    for line in sh("iptables", "-w", "-S", "FORWARD").splitlines():
        if f"--comment {COMMENT}" in line:
            sh("iptables", "-w", *line.replace("-A FORWARD", "-D FORWARD", 1).split(), check=False)
    for port in PORTS:  # first, so sockets still closing in a namespace don't keep its veth alive
        sh("ip", "link", "del", port, check=False)
    for ns in NS:
        sh("ip", "netns", "del", ns, check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


TUNSETIFF, IFF_TAP, IFF_NO_PI = 0x400454CA, 0x0002, 0x1000


def open_tap(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def tap_relay(delay_file: str) -> None:
    """The TAP wire: frames a -> b held for the delay read from ``delay_file`` (ms), b -> a at once."""
    fds = [open_tap(t) for t in TAPS]
    for i in (0, 1):
        sh("ip", "link", "set", TAPS[i], "netns", NS[i])
    print("ready", flush=True)
    held: list[tuple[float, int, int, bytes]] = []
    seq, delay, checked = 0, 0.0, 0.0
    while True:
        now = time.monotonic()
        if now - checked > 0.2:
            checked = now
            with open(delay_file) as f:
                delay = float(f.read() or 0) / 1000
        timeout = max(0.0, held[0][0] - now) if held else 0.2
        ready, _, _ = select.select(fds, [], [], timeout)
        for fd in ready:
            out = fds[1] if fd == fds[0] else fds[0]
            for _ in range(64):
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if fd == fds[0] and delay > 0:
                    seq += 1
                    heapq.heappush(held, (time.monotonic() + delay, seq, out, frame))
                else:
                    _write(out, frame)
        now = time.monotonic()
        while held and held[0][0] <= now:
            _, _, out, frame = heapq.heappop(held)
            _write(out, frame)


def _write(fd: int, frame: bytes) -> None:
    try:
        os.write(fd, frame)
    except (BlockingIOError, OSError):
        pass  # a full TAP queue drops, as a full link would


def setup_tap(delay_file: str) -> subprocess.Popen:
    for ns in NS:
        sh("ip", "netns", "add", ns)
    proc = subprocess.Popen([sys.executable, __file__, "--tap-relay", delay_file], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    for i in (0, 1):
        sh(*in_ns(i, "ip", "addr", "add", f"{ADDR[i]}/24", "dev", TAPS[i]))
        sh(*in_ns(i, "ip", "link", "set", TAPS[i], "txqueuelen", "10000", "up"))
        sh(*in_ns(i, "ip", "link", "set", "lo", "up"))
    return proc


# -- measurements --------------------------------------------------------------------------
def ping(count: int, interval_ms: int) -> list[float]:
    out = subprocess.run(in_ns(0, "fping", "-C", str(count), "-q", "-p", str(interval_ms), "-t", "2000", ADDR[1]),
                         capture_output=True, text=True).stderr
    samples = out.split(" : ", 1)[1].split() if " : " in out else []
    return [float(s) for s in samples if s != "-"]


def iperf(seconds: float, udp_pps: int | None = None) -> dict:
    server = subprocess.Popen(in_ns(1, "iperf3", "-s", "-1", "-J"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        argv = ["iperf3", "-c", ADDR[1], "-t", str(seconds), "-J", "--get-server-output"]
        if udp_pps:
            argv += ["-u", "-l", str(UDP_PAYLOAD), "-b", str(udp_pps * UDP_PAYLOAD * 8)]
        out = subprocess.run(in_ns(0, *argv), capture_output=True, text=True, timeout=seconds + 30).stdout
    finally:
        server.wait(timeout=10)
    return json.loads(out)


class Mechanism:
    def __init__(self, name: str, tmp: Path) -> None:
        self.name, self.delay_file = name, tmp / "delay_ms"
        self.delay_file.write_text("0")
        self.proc = setup_nfqueue() if name == "nfqueue" else setup_tap(str(self.delay_file))

    def set_delay(self, ms: float) -> None:
        if self.name == "nfqueue":
            delayline.request(CONTROL, {"op": "set", "device": PORTS[0], "direction": "output",
                                        "delay_us": int(ms * 1000)})
        else:
            self.delay_file.write_text(str(ms))
            time.sleep(0.3)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        teardown()


def plain_baseline() -> float:
    """RTT over the bridge with nothing in userspace: what both mechanisms' added delay is measured from."""
    teardown()
    try:
        setup_bridge()
        ping(3, 20)
        return statistics.median(ping(100, 10))
    finally:
        teardown()


def measure(name: str, tmp: Path, base: float) -> list[dict]:
    rows = []
    m = Mechanism(name, tmp)
    try:
        ping(3, 20)
        zero = statistics.median(ping(50, 10))
        rows.append({"mechanism": name, "test": "RTT at 0 ms asked, over the plain bridge's",
                     "asked": "0 ms", "measured": f"{zero:.3f} ms ({base:.3f} ms)", "error": f"{zero - base:+.3f} ms"})
        for ms in DELAYS_MS:
            m.set_delay(ms)
            rtt = ping(max(20, min(50, 2000 // ms)), max(10, ms // 4))
            added = statistics.median(rtt) - base
            rows.append({"mechanism": name, "test": "RTT added (median)", "asked": f"{ms} ms",
                         "measured": f"{added:.3f} ms (stdev {statistics.stdev(rtt):.3f})",
                         "error": f"{added - ms:+.3f} ms", "_rtt_error": added - ms})
        for ms in (0, 50):
            m.set_delay(ms)
            got = iperf(6)
            bps = statistics.median(i["sum"]["bits_per_second"] for i in got["server_output_json"]["intervals"][1:6])
            rows.append({"mechanism": name, "test": "TCP goodput, no rate limit", "asked": f"{ms} ms",
                         "measured": f"{bps / 1e6:.1f} Mbit/s", f"_tcp_{ms}": bps / 1e6})
        m.set_delay(10)
        for pps in RATES_PPS:
            import threading
            probes: list[float] = []
            t = threading.Thread(target=lambda: probes.extend(ping(60, 40)))
            t.start()
            got = iperf(3, pps)
            t.join()
            end = got["server_output_json"]["end"]["sum"]
            received = (end["packets"] - end["lost_packets"]) / end["seconds"]
            added = statistics.median(probes) - base if probes else float("nan")
            rows.append({"mechanism": name, "test": "UDP packet rate, 10 ms asked", "asked": f"{pps} pkt/s",
                         "measured": f"{received:.0f} pkt/s, lost {end['lost_percent']:.2f}%, RTT added {added:.2f} ms",
                         "error": f"{added - 10:+.2f} ms", "_pps": pps, "_lost": end["lost_percent"],
                         "_rtt_error": added - 10})
    finally:
        m.close()
    return rows


def summary(rows: list[dict]) -> pd.DataFrame:
    """Per mechanism: the worst RTT error at 1-200 ms, TCP goodput, and the packet-rate ceiling:
    the highest offered rate still delivered with under 0.5% loss and the RTT within 0.3 ms."""
    out = []
    for name in dict.fromkeys(r["mechanism"] for r in rows):
        mine = [r for r in rows if r["mechanism"] == name]
        delays = [r["_rtt_error"] for r in mine if r["test"].startswith("RTT added")]
        rates = [r for r in mine if "_pps" in r]
        kept = [r["_pps"] for r in rates if r["_lost"] < 0.5 and abs(r["_rtt_error"]) <= 0.3]
        ceiling = 0
        for r in rates:  # the first rate that fails ends the run: a ceiling is not a lucky point above a miss
            if r["_pps"] not in kept:
                break
            ceiling = r["_pps"]
        out.append({"mechanism": name, "worst RTT error, 1-200 ms": f"{max(delays, key=abs):+.3f} ms",
                    "TCP at 0 ms": f"{next(r['_tcp_0'] for r in mine if '_tcp_0' in r):.0f} Mbit/s",
                    "TCP at 50 ms": f"{next(r['_tcp_50'] for r in mine if '_tcp_50' in r):.0f} Mbit/s",
                    "packet-rate ceiling": f"{ceiling:,} pkt/s"})
    return pd.DataFrame(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tap-relay", help=argparse.SUPPRESS)
    parser.add_argument("--only", choices=["nfqueue", "tap"])
    args = parser.parse_args()
    if args.tap_relay:
        return tap_relay(args.tap_relay)
    import tempfile

    teardown()
    load = os.getloadavg()[0]
    rows = []
    base = plain_baseline()
    with tempfile.TemporaryDirectory() as tmp:
        for name in [args.only] if args.only else ["nfqueue", "tap"]:
            rows += measure(name, Path(tmp), base)
    table = pd.DataFrame(rows)
    table.to_csv(RESULTS / "delayline-raw.csv.tmp", index=False)  # kept if what follows fails
    table = table[[c for c in table.columns if not c.startswith("_")]].fillna("")
    short = summary(rows)
    load = f"{load:.2f} at start, {os.getloadavg()[0]:.2f} at the end"
    print(table.to_string(index=False))
    print(short.to_string(index=False))
    if not args.only:
        RESULTS.mkdir(exist_ok=True)
        table.to_csv(RESULTS / "delayline.csv", index=False)
        (RESULTS / "delayline.md").write_text(
            f"# userspace delay line: NFQUEUE vs TAP relay ({os.uname().nodename}, kernel {os.uname().release}, "
            f"{os.cpu_count()} cores, load {load})\n\n"
            "Both single-threaded Python, the delay on a -> b only; the traffic's sender and receiver (iperf3, "
            "fping) share the same cores. RTTs added are over a plain bridge's RTT (no userspace in the path; "
            "fping prints 0.1 ms steps from 10 ms up). Ceiling: the highest offered UDP rate (64-byte payloads, 10 ms asked) "
            "delivered with under 0.5% loss and the RTT within 0.3 ms, every lower rate too.\n\n"
            + short.to_markdown(index=False) + "\n\n" + table.to_markdown(index=False) + "\n")


if __name__ == "__main__":
    main()
