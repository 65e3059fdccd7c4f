"""The few system commands the agent runs (tar, cp, mount, losetup, btrfs): argv lists, never a shell."""

from __future__ import annotations

import subprocess


def run(argv: list[str]) -> str:
    """Run ``argv``; its stdout, or OSError with the command and its stderr."""
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode:
        raise OSError(f"{' '.join(argv[:3])} exited with {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return proc.stdout.strip()


def mounted(path: str) -> bool:
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot): with the pid, who it is (pids are reused)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None
