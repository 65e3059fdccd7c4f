"""Run a command inside a guest kernel that has sch_netem, cgroup v2 and memcg: UML where it boots, else QEMU.

    python -m distem.testing.guest run [--kernel auto|uml|qemu] [--mem M] [--cpus N] -- CMD...
    python -m distem.testing.guest info

Two backends, the same guest inside (the host's ``/`` read-only under a tmpfs overlay, the
working directory read-write at the same path, cgroup2 with cpu/cpuset/memory/io/pids, the
qdisc modules, ``DISTEM_IN_GUEST=uml|qemu`` exported):

- ``uml``: Debian's user-mode Linux, a kernel as a process, boots in about 2 s, one vCPU.
  It cannot boot on CPUs with AMX (the host's ptrace refuses its xstate writes).
- ``qemu``: Debian's own kernel under QEMU, with KVM where a KVM guest really runs (nested
  KVM does not here), else TCG: boots anywhere, about 8 s, CPU-bound work many times slower.

``auto`` (the default, or ``DISTEM_GUEST=uml|qemu`` to force one) probes each backend once per
machine and kernel, caches the verdict in ``CACHE/verdict.json``, and takes the first that runs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from distem.testing import qemu, uml
from distem.testing.guestboot import GuestError

BACKENDS = ("uml", "qemu-kvm", "qemu")
PROBE_RC = 7  # what the probe's job exits with when the guest ran it


class NoGuestKernel(GuestError):
    """No backend runs on this machine (each one's reason in the message)."""


def _probe(backend: str) -> str:
    """'' when ``backend`` boots and runs a job here, else why not (the console's last lines)."""
    job = ["/bin/sh", "-c", f"exit {PROBE_RC}"]
    with tempfile.TemporaryFile() as console, tempfile.TemporaryDirectory() as cwd:
        try:
            if backend == "uml":
                if uml.find_kernel() is None:
                    return "Debian's user-mode-linux package is not installed"
                rc = uml.run(job, cwd=cwd, mem="256M", timeout=60, console=console.fileno())
            else:
                accel = "kvm" if backend == "qemu-kvm" else "tcg"
                if accel == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
                    return "no usable /dev/kvm"
                rc = qemu.run(job, cwd=cwd, mem="512M", cpus=1, timeout=60 if accel == "kvm" else 180,
                              accel=accel, console=console.fileno())
        except (GuestError, OSError) as e:
            return str(e)
        if rc == PROBE_RC:
            return ""
        console.seek(0)
        tail = [line for line in console.read().decode(errors="replace").splitlines() if line.strip()][-3:]
        return f"the probe job did not run (exit {rc}): " + (" | ".join(tail) or "no console output")


def _cache_key() -> str:
    flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    return f"{platform.release()} {hashlib.sha256(flags.encode()).hexdigest()[:12]}"


def verdicts(refresh: bool = False, every: bool = False) -> dict[str, str]:
    """Backends' verdicts on this machine: '' where it runs, else the reason; probed once and cached.

    Probing stops at the first backend that runs, unless ``every``."""
    path = qemu.CACHE / "verdict.json"
    key = _cache_key()
    found: dict[str, str] = {}
    if not refresh and path.exists():
        cached = json.loads(path.read_text())
        if cached.get("key") == key:
            found = cached["verdicts"]
    for backend in BACKENDS:
        if "" in found.values() and not every:
            break
        if backend not in found:
            found[backend] = _probe(backend)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"key": key, "verdicts": found}, indent=1))
    return found


def choose(kernel: str = "auto") -> str:
    """The backend to use: ``kernel`` if forced (argument or DISTEM_GUEST), else the first that runs."""
    if kernel == "auto":
        kernel = os.environ.get("DISTEM_GUEST", "auto")
    if kernel in BACKENDS:
        return kernel
    if kernel != "auto":
        raise GuestError(f"kernel: {kernel!r} is not one of auto, {', '.join(BACKENDS)}")
    found = verdicts()
    for backend in BACKENDS:
        if found.get(backend) == "":
            return backend
    raise NoGuestKernel("no guest kernel runs here: " + "; ".join(f"{b}: {r}" for b, r in found.items())
                     + " (after fixing one: python -m distem.testing.guest info --refresh)")


def run(argv: list[str], *, kernel: str = "auto", cwd: str | os.PathLike[str] = ".", mem: str = "2G",
        cpus: int = 2, timeout: float = 3600) -> int:
    """Run ``argv`` in the chosen guest kernel, as root in ``cwd``; its exit code (125: it never ran)."""
    backend = choose(kernel)
    if backend == "uml":
        return uml.run(argv, cwd=cwd, mem=mem, timeout=timeout)
    return qemu.run(argv, cwd=cwd, mem=mem, cpus=cpus, timeout=timeout,
                    accel="kvm" if backend == "qemu-kvm" else "tcg")


def run_or_skip(argv: list[str], **kwargs: Any) -> int:
    """``run``, or where no guest kernel runs, ``argv`` on the host with ``DISTEM_GUEST_SKIP`` set to
    why (tests/conftest.py then skips every guest test, naming each backend's reason)."""
    try:
        choose(kwargs.get("kernel", "auto"))
    except NoGuestKernel as e:
        print(f"distem.testing.guest: {e}; running on the host, the guest tests skipped", file=sys.stderr)
        return subprocess.run(argv, env={**os.environ, "DISTEM_GUEST_SKIP": str(e)}).returncode
    return run(argv, **kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m distem.testing.guest", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    info = sub.add_parser("info", help="the chosen backend and why the others were refused")
    info.add_argument("--refresh", action="store_true", help="probe again instead of using the cached verdict")
    sub.add_parser("setup", help="fetch the kernels (UML package, Debian's kernel for QEMU) if missing")
    runner = sub.add_parser("run", help="run a command in the guest (after --)")
    runner.add_argument("--kernel", default="auto", choices=["auto", *BACKENDS])
    runner.add_argument("--mem", default="2G")
    runner.add_argument("--cpus", type=int, default=2, help="vCPUs (QEMU; UML has one)")
    runner.add_argument("--timeout", type=float, default=3600)
    runner.add_argument("--or-skip", action="store_true", help="where no guest kernel runs, run the command "
                        "on the host with DISTEM_GUEST_SKIP set to why (the guest tests skip with it)")
    runner.add_argument("argv", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            print(uml.ensure_kernel())
            print(qemu.ensure_kernel())
            return 0
        if args.command == "info":
            found = verdicts(refresh=args.refresh, every=True)
            for backend in BACKENDS:
                print(f"{backend:9} {'runs' if found.get(backend) == '' else found.get(backend, 'not probed')}")
            print(f"chosen: {choose()}")
            return 0
        command = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
        if not command:
            parser.error("give the command to run after --")
        return (run_or_skip if args.or_skip else run)(command, kernel=args.kernel, mem=args.mem, cpus=args.cpus,
                                                     timeout=args.timeout)
    except GuestError as e:
        print(f"distem.testing.guest: {e}", file=sys.stderr)
        return 125


if __name__ == "__main__":
    sys.exit(main())
