"""Preparing a pnode for the agent (``distem bootstrap``): run by the pnode's system Python, stdlib only.

Sent alone through ``remote_exec`` (the agent's modules need pyroute2 and lxc, which this step may
have to install first). Every step checks before it acts, so running it twice changes nothing the
second time. Protocol: receives ``{"python", "packages", "modules", "btrfs_device", "btrfs_mount"}``,
sends ``("step", name, outcome)`` as each step ends, then ``("ok", summary)`` or ``("error", message)``.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any


def _run(argv: list[str], **env: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, **env})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-400:]}")
    return done.stdout


def packages(wanted: list[str]) -> str:
    """Debian packages the agent and its tools need: only the missing ones are installed."""
    missing = []
    for name in wanted:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True).stdout
        if "install ok installed" not in status:
            missing.append(name)
    if not missing:
        return "present"
    _run(["apt-get", "update", "-qq"])
    _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], DEBIAN_FRONTEND="noninteractive")
    return "installed " + " ".join(missing)


def python_modules(python: str, modules: dict[str, str], venv: str) -> str:
    """The agent's Python: ``python`` if it imports every module; else, when it is the bootstrap's own
    virtualenv, that virtualenv is made (seeing the system's packages) and the modules installed."""
    probe = "import " + ", ".join(modules)
    if os.path.exists(python) or "/" not in python:
        if subprocess.run([python, "-c", probe], capture_output=True).returncode == 0:
            return "present"
    if python != os.path.join(venv, "bin", "python3"):
        raise RuntimeError(f"{python} cannot {probe!r}; install those modules for it, or leave the pnode's "
                           f"python to the bootstrap ({venv})")
    _run(["python3", "-m", "venv", "--system-site-packages", venv])
    _run([python, "-m", "pip", "install", "-q", *modules.values()])
    return "installed " + " ".join(modules.values())


def btrfs(device: str | None, mountpoint: str) -> str:
    """A btrfs filesystem on ``device`` mounted at ``mountpoint`` (made only if the device holds none)."""
    if device is None:
        return "not asked"
    if not os.path.exists(device):
        raise RuntimeError(f"no device {device}")
    kind = subprocess.run(["blkid", "-o", "value", "-s", "TYPE", device], capture_output=True, text=True).stdout.strip()
    made = kind != "btrfs"
    if made:
        _run(["mkfs.btrfs", "-q", "-f", device])
    os.makedirs(mountpoint, exist_ok=True)
    if subprocess.run(["mountpoint", "-q", mountpoint]).returncode != 0:
        _run(["mount", device, mountpoint])
    return f"{'formatted' if made else 'present'}, mounted at {mountpoint}"


def prepare(channel: Any) -> None:
    asked = channel.receive()
    summary: dict[str, str] = {}
    steps = (("packages", lambda: packages(asked["packages"])),
             ("python", lambda: python_modules(asked["python"], asked["modules"], asked["venv"])),
             ("btrfs", lambda: btrfs(asked["btrfs_device"], asked["btrfs_mount"])))
    for name, step in steps:
        try:
            summary[name] = step()
        except Exception as exc:
            channel.send(("error", f"{name}: {exc}"))
            return
        channel.send(("step", name, summary[name]))
    channel.send(("ok", summary))


if __name__ == "__channelexec__":
    prepare(channel)  # type: ignore[name-defined]  # noqa: F821
