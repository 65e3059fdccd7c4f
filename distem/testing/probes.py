"""Measurements taken inside a vnode, shared by the tests and the benchmarks."""

from __future__ import annotations

from typing import Any

BUSY_LOOP = "i=0; while [ $i -lt {n} ]; do i=$((i+1)); done"


def run_timed(platform: Any, vnode: str, job: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``job`` run by the vnode's shell, both read inside the vnode
    (/proc/uptime and busybox's ``times``, the shell's and its children's, 10 ms steps). Timed from
    the controller, the fixed cost of entering the container (0.1-0.2 s in the UML guest) would be
    counted too; the shell is charged that cost before it starts, hence ``times`` before and after."""
    out = platform.check(vnode, f"times; read a b < /proc/uptime; {job}; read c d < /proc/uptime; echo $a $c; times")
    lines = out.splitlines()
    started, ended = map(float, lines[2].split())
    return ended - started, _cpu_seconds(lines[3:5]) - _cpu_seconds(lines[0:2])


def _cpu_seconds(shell_times: list[str]) -> float:
    """The sum of ``times``' lines: the shell's user and sys, then its children's ("0m1.790s")."""
    return sum(int(m) * 60 + float(s) for m, s in (t.rstrip("s").split("m") for t in " ".join(shell_times).split()))


def slowdown(platform: Any, vnode: str, n: int) -> float:
    """How many times its own CPU time a busy loop of ``n`` steps takes: 1/ratio under a CPU limit.

    The loop's CPU time is its full-speed duration whatever else loads the machine (a shared core;
    in the UML guest, the host taking the guest's only vCPU away, which the guest still charges
    to the loop), so it is the reference rather than a full-speed run timed at another moment."""
    wall, cpu = run_timed(platform, vnode, BUSY_LOOP.format(n=n))
    return wall / cpu


def calibrate_loop(platform: Any, vnode: str, seconds: float = 1.0) -> int:
    """A busy-loop size taking about ``seconds`` at the vnode's current speed."""
    n = 100_000
    while (took := run_timed(platform, vnode, BUSY_LOOP.format(n=n))[0]) < 0.8 * seconds:
        n = int(n * seconds / max(took, 0.05))
    return n
