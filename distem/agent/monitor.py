"""Sampling on this pnode: the platform's interfaces, vnodes and the pnode itself, every interval.

A sampler is a thread that, each tick, reads what the kernel counts already: ``/proc/net/dev``
(every interface, one read), one netlink dump of the root qdiscs (their queues), each vnode's
cgroup files, ``/proc/stat``, ``/proc/loadavg``, ``/proc/meminfo`` and the delay line's counters.
It appends one row of numbers to its buffer. What each number is (its key: kind, name, metric)
is kept once; a chunk of rows shares one layout of keys, so a row costs 8 bytes a number.

The controller fetches rows in batches (``fetch``), which frees them; past ``max_mb`` the oldest
chunk is dropped and counted as lost (so the buffer holds at most ``max_mb`` plus the chunk being
filled, CHUNK_ROWS rows). Ticks fall on ``epoch + k * interval`` and each row's time
is this pnode's ``time.time() - epoch``: the controller gives every pnode the same instant on its
own clock, so rows of all pnodes line up.

Keys name host devices and cgroup directories, not vnodes: the agent knows no model, and a vnode
created while sampling is found by its name alone (``d<platform>v...`` veths, ``d<platform>f...``
ifbs, ``vnode-<name>`` cgroups).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from array import array
from collections.abc import Callable
from typing import Any

from . import cgroups, netlink_batch

Key = tuple[str, str, str]  # ("dev" | "cgroup" | "pnode" | "rtt", device / vnode / "" / label, metric)
CHUNK_ROWS = 600
NETDEV = {"rx_bytes": 0, "rx_packets": 1, "rx_drops": 3, "tx_bytes": 8, "tx_packets": 9, "tx_drops": 11}
DELAY_LINE = ("received", "dropped", "held")
REPLY = re.compile(rb"^\[[\d.]+\] \S+ : \[\d+\], \d+ bytes, ([\d.]+) ms")
# (vnode, argv) -> the process in the vnode's network namespace and the pid of the vnode's init then;
# None while the vnode is not running
Spawn = Callable[[str, list[str]], "tuple[subprocess.Popen[bytes], int] | None"]


class Pinger:
    """A ``fping -l`` from a vnode's network namespace to one address, and the replies it heard
    since the last tick. A stopped vnode's namespace lives on while the fping in it does: once
    the vnode's init is gone, the fping is stopped, and the tick after its restart starts another."""

    def __init__(self, label: str, vnode: str, address: str, period_ms: int, spawn: Spawn,
                 reap: Callable[[subprocess.Popen[bytes]], None]) -> None:
        self.label, self.vnode, self.address, self.period_ms = label, vnode, address, period_ms
        self.spawn, self.reap = spawn, reap
        self.proc: subprocess.Popen[bytes] | None = None
        self.init = 0  # the vnode's init when this fping started
        self.heard: list[float] = []
        self.lock = threading.Lock()

    def follow(self) -> None:
        """An fping running in the vnode's current namespace (none while the vnode is down)."""
        if self.proc is not None and self.proc.poll() is None and os.path.exists(f"/proc/{self.init}"):
            return
        self.close()
        started = self.spawn(self.vnode, ["fping", "-l", "-D", "-p", str(self.period_ms),
                                          "-t", str(max(self.period_ms, 500)), self.address])
        if started is None:  # the vnode is down: nothing to probe from
            return
        self.proc, self.init = started
        threading.Thread(target=self._read, args=(self.proc,), name="distem-pinger", daemon=True).start()

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            match = REPLY.match(line)
            if match:
                with self.lock:
                    self.heard.append(float(match[1]))

    def take(self) -> list[tuple[Key, float]]:
        with self.lock:
            heard, self.heard = self.heard, []
        row = [(("rtt", self.label, "rtt_replies"), float(len(heard)))]
        if heard:
            row.append((("rtt", self.label, "rtt_ms"), sum(heard) / len(heard)))
        return row

    def close(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.reap(self.proc)
            self.proc = None


class _Chunk:
    def __init__(self, layout: tuple[int, ...]) -> None:
        self.layout = layout
        self.times = array("d")
        self.values = array("d")

    def size(self) -> int:
        return 8 * (len(self.times) + len(self.values))


class Sampler:
    """What to read: ``devices``, name prefixes of host interfaces whose counters and root queue are
    sampled (``queues``: whose queue only); ``cgroup_root``, the platform's cgroup directory (its
    ``vnode-*`` children); ``system``: the pnode's CPU, load, memory; ``delay_line``: a callable giving the
    delay line's counters (None when none runs); ``pingers``: RTTs from vnodes to addresses.
    Distem's probes: ``host``, one interface's byte counters; ``loadavg``, the three load averages."""

    def __init__(self, interval: float, epoch: float, max_mb: float, devices: list[str], queues: list[str],
                 cgroup_root: str = "", system: bool = False,
                 delay_line: Callable[[], dict[str, Any] | None] | None = None, host: str = "",
                 loadavg: bool = False, pingers: list[Pinger] | None = None) -> None:
        self.interval, self.epoch, self.max_bytes = interval, epoch, int(max_mb * 1e6)
        self.devices, self.queues = tuple(devices), tuple(queues)
        self.cgroup_root, self.system, self.delay_line = cgroup_root, system, delay_line
        self.host, self.loadavg, self.pingers = host, loadavg, pingers or []
        self.hierarchies = cgroups.hierarchies()
        self.keys: list[Key] = []
        self.key_ids: dict[Key, int] = {}
        self.chunks: list[_Chunk] = []
        self.size = 0
        self.lost = 0  # rows dropped past max_mb, never fetched
        self.ticks = 0
        self.busy_s = 0.0  # this thread's own time spent reading (its cost)
        self.error = ""  # why the thread ended early, for the controller to say
        self.ifindex: dict[str, int] = {}
        self.last_cpu = cpu_times()
        self.lock = threading.Lock()  # between the thread's appends and a fetch
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    # -- the thread --------------------------------------------------------------------
    def start(self) -> None:
        self.stopping.clear()
        for pinger in self.pingers:
            pinger.follow()
        self.thread = threading.Thread(target=self._serve, name="distem-monitor", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        for pinger in self.pingers:
            pinger.close()

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def _serve(self) -> None:
        origin = time.monotonic() + (self.epoch - time.time())
        k = max(0, int((time.monotonic() - origin) / self.interval) + 1)
        while not self.stopping.wait(max(0.0, origin + k * self.interval - time.monotonic())):
            began = time.thread_time()
            try:
                self.sample()
            except Exception as exc:  # the rows so far stay fetchable; the controller says why it ended
                self.error = f"{type(exc).__name__}: {exc}"
                return
            self.busy_s += time.thread_time() - began
            k = max(k + 1, int((time.monotonic() - origin) / self.interval) + 1)  # a late tick is skipped

    # -- one tick ----------------------------------------------------------------------
    def sample(self) -> None:
        now = time.time()
        row: list[tuple[Key, float]] = []
        if self.devices or self.queues or self.host:
            row += self._devices()
        if self.cgroup_root:
            row += self._cgroups()
        if self.system:
            row += self._system()
        for pinger in self.pingers:
            row += pinger.take()
            pinger.follow()
        if self.loadavg:
            with open("/proc/loadavg") as f:
                loads = f.read().split()[:3]
            row += [(("pnode", "", f"load{m}"), float(v)) for m, v in zip((1, 5, 15), loads)]
        if self.delay_line is not None:
            stats = self.delay_line()
            if stats is not None:
                row += [(("pnode", "", f"delay_line_{name}"), float(stats[name])) for name in DELAY_LINE]
        self._append(now - self.epoch, row)
        self.ticks += 1

    def _devices(self) -> list[tuple[Key, float]]:
        row: list[tuple[Key, float]] = []
        with open("/proc/net/dev") as f:
            lines = f.read().splitlines()[2:]
        names = []
        for line in lines:
            name, _, rest = line.partition(":")
            name = name.strip()
            if name == self.host:
                fields = rest.split()
                row += [(("pnode", "", "host_rx_bytes"), float(fields[0])), (("pnode", "", "host_tx_bytes"), float(fields[8]))]
            if not (self.devices or self.queues):
                continue
            if name.startswith(self.devices):
                fields = rest.split()
                row += [(("dev", name, metric), float(fields[i])) for metric, i in NETDEV.items()]
            if name.startswith(self.devices + self.queues):
                names.append(name)
        if not names:
            return row
        queues = netlink_batch.root_qdisc_queues()
        if any(self.ifindex.get(n) not in queues for n in names):  # new devices, or recreated (a restart)
            self.ifindex = {n: _ifindex(n) for n in names}
        for name in names:
            backlog, drops = queues.get(self.ifindex.get(name, -1), (0, 0))
            row += [(("dev", name, "queue_bytes"), float(backlog)), (("dev", name, "queue_drops"), float(drops))]
        return row

    def _cgroups(self) -> list[tuple[Key, float]]:
        h = self.hierarchies
        mount = h.v1.get("cpuacct") or h.v1.get("memory") or h.v2
        try:
            children = sorted(e.name for e in os.scandir(os.path.join(mount or "", self.cgroup_root))
                              if e.is_dir() and e.name.startswith("vnode-"))
        except OSError:
            return []
        row: list[tuple[Key, float]] = []
        for child in children:
            vnode = child[len("vnode-"):]
            used = cgroups.usage(f"{self.cgroup_root}/{child}", h)
            row += [(("cgroup", vnode, metric), float(value)) for metric, value in used.items()]
        return row

    def _system(self) -> list[tuple[Key, float]]:
        total, idle = cpu_times()
        busy = 1 - (idle - self.last_cpu[1]) / (total - self.last_cpu[0]) if total > self.last_cpu[0] else 0.0
        self.last_cpu = (total, idle)
        with open("/proc/loadavg") as f:
            load1 = float(f.read().split()[0])
        with open("/proc/meminfo") as f:
            available = next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
        return [(("pnode", "", "cpu_busy"), busy), (("pnode", "", "load1"), load1),
                (("pnode", "", "memory_available_bytes"), float(available))]

    def _append(self, t: float, row: list[tuple[Key, float]]) -> None:
        ids = []
        for key, _ in row:
            i = self.key_ids.get(key)
            if i is None:
                i = self.key_ids[key] = len(self.keys)
                self.keys.append(key)
            ids.append(i)
        layout = tuple(ids)
        with self.lock:
            self._add_row(layout, t, [value for _, value in row])

    def _add_row(self, layout: tuple[int, ...], t: float, values: list[float]) -> None:
        chunk = self.chunks[-1] if self.chunks else None
        if chunk is None or chunk.layout != layout or len(chunk.times) >= CHUNK_ROWS:
            chunk = _Chunk(layout)
            self.chunks.append(chunk)
        chunk.times.append(t)
        chunk.values.extend(values)
        self.size += 8 * (1 + len(values))
        while self.size > self.max_bytes and len(self.chunks) > 1:
            oldest = self.chunks.pop(0)
            self.size -= oldest.size()
            self.lost += len(oldest.times)

    # -- what the controller reads -------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self.lock:
            rows = sum(len(c.times) for c in self.chunks)
            return {"ticks": self.ticks, "buffered_rows": rows, "buffered_bytes": self.size, "lost": self.lost,
                    "busy_s": self.busy_s, "running": self.running(), "error": self.error}

    def fetch(self, known_keys: int) -> dict[str, Any]:
        """The rows sampled since the last fetch (then freed) and the keys after the first
        ``known_keys``: ``{"keys", "chunks": [{"layout", "times", "values"}], "lost", "busy_s", "error"}``."""
        with self.lock:
            chunks, self.chunks, self.size = self.chunks, [], 0
        return {"keys": [list(k) for k in self.keys[known_keys:]],
                "chunks": [{"layout": list(c.layout), "times": c.times.tobytes(), "values": c.values.tobytes()}
                           for c in chunks],
                "lost": self.lost, "busy_s": self.busy_s, "error": self.error}


def cpu_times() -> tuple[int, int]:
    """All the pnode's CPU time and the idle part (idle + iowait), in jiffies, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields[:8]), fields[3] + fields[4]  # user .. steal


def _ifindex(name: str) -> int:
    try:
        with open(f"/sys/class/net/{name}/ifindex") as f:
            return int(f.read())
    except (OSError, ValueError):
        return -1
