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


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command's name (field 3, the state, first); None: no such process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot): with the pid, who it is (pids are reused)."""
    fields = _stat(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def process_parent(pid: int) -> int | None:
    fields = _stat(pid)
    return int(fields[1]) if fields and len(fields) > 1 else None


def process_running(pid: int) -> bool:
    """The process exists and has not ended (a zombie, not yet reaped by its parent, has)."""
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"
