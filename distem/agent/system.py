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
