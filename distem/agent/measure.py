"""Measuring from inside vnodes: the host's fping entered into each vnode's network namespace.

The vnode's own interfaces, qdiscs and routes carry the probes, so what is
measured is the vnode's path, and busybox images need no fping of their own.
"""

from __future__ import annotations

import subprocess


def in_netns(pid: int, argv: list[str]) -> list[str]:
    """``argv`` (a program of this pnode) run inside the network namespace of process ``pid``."""
    return ["nsenter", f"--net=/proc/{pid}/ns/net", *argv]


def fping_argv(pid: int, targets: list[str], count: int, interval_ms: int, timeout_ms: int) -> list[str]:
    return in_netns(pid, ["fping", "-C", str(count), "-q", "-p", str(interval_ms), "-i", "1", "-t", str(timeout_ms),
                          *targets])


def parse_fping(stderr: str) -> dict[str, list[float | None]]:
    """fping -C lines: "10.0.0.2 : 0.05 0.04 - 0.03" ('-' is a lost probe) -> RTTs in ms."""
    out: dict[str, list[float | None]] = {}
    for line in stderr.splitlines():
        address, sep, samples = line.partition(" : ")
        if sep:
            out[address.strip()] = [None if s == "-" else float(s) for s in samples.split()]
    return out


def fping_many(sources: dict[str, int], targets: list[str], count: int, interval_ms: int,
               own: dict[str, str], timeout_ms: int = 2000) -> dict[str, dict[str, list[float | None]]]:
    """Probe ``targets`` from every source (name -> init pid) at once; a source skips its own address.

    A first round of one probe each, not counted, resolves the neighbours: a probe queued behind
    an ARP request that had to be repeated would count a second of ARP as latency.
    """
    _fping_wave(sources, targets, 1, interval_ms, own, timeout_ms)
    return _fping_wave(sources, targets, count, interval_ms, own, timeout_ms)


def _fping_wave(sources: dict[str, int], targets: list[str], count: int, interval_ms: int,
                own: dict[str, str], timeout_ms: int) -> dict[str, dict[str, list[float | None]]]:
    procs = {name: subprocess.Popen(fping_argv(pid, [t for t in targets if t != own.get(name)], count, interval_ms,
                                                               timeout_ms),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for name, pid in sources.items()}
    results = {}
    for name, proc in procs.items():
        _, err = proc.communicate()
        if proc.returncode not in (0, 1):  # 1: some target unreachable, which is a result
            raise OSError(f"fping from {name} exited with {proc.returncode}: {err.strip()[-300:]}")
        results[name] = parse_fping(err)
    return results
