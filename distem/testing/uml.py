"""Run a command inside a user-mode Linux (UML) guest kernel: sch_netem, cgroup v2 and memcg anywhere.

Debian's ``user-mode-linux`` package ships a full 6.1 kernel as a program. The
guest's root is the host's own ``/`` (read-only hostfs) under a tmpfs overlay,
so the host's Python, venv and tools run unchanged; the working directory is
mounted read-write at the same path. Inside, before the command runs:
cgroup2 at /sys/fs/cgroup with cpu/cpuset/memory/io/pids enabled, a tmpfs
/tmp (overlayfs can't use the root overlay as an upper dir), the qdisc and
network modules loaded, ``lo`` up, and ``DISTEM_IN_GUEST=uml`` exported.

    python -m distem.testing.guest run --kernel uml -- .venv/bin/python -m pytest tests/guest

Pitfalls handled here: linux.uml always exits 0 (the exit code comes back
through a file); busybox ``sh`` would shadow ``ip``/``tc`` with its applets
(the job runs under the host's /bin/sh); the guest's memory lives in $TMPDIR
(we use /dev/shm); the guest has one vCPU at HZ=100 (assert on medians).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from distem.testing.guestboot import GUEST_MODULES, GuestError, boot, job_script, stage2_script

KERNEL = Path("/usr/bin/linux.uml")
MODULES = Path("/usr/lib/uml/modules")

_INIT = r"""#!/bin/busybox sh
# PID 1 of the UML guest: a writable root over the host's (hostfs), then the shared stage 2.
B=/bin/busybox
$B mount -t proc proc /proc
for a in $($B cat /proc/cmdline); do case $a in
  uml.work=*) WORK=${a#uml.work=};; uml.state=*) ST=${a#uml.state=};; uml.mods=*) MODS=${a#uml.mods=};; esac; done
$B insmod $MODS/$($B uname -r)/kernel/fs/overlayfs/overlay.ko
$B mount -t tmpfs tmpfs /mnt && $B mkdir -p /mnt/u /mnt/w /mnt/r
$B mount -t overlay overlay -o lowerdir=/,upperdir=/mnt/u,workdir=/mnt/w /mnt/r || $B poweroff -f
cd /mnt/r && $B mkdir -p .oldroot && $B pivot_root . .oldroot && cd / || $B poweroff -f
$B mount -t proc proc /proc; $B mount -t tmpfs tmpfs /run; $B mount -t tmpfs -o mode=1777 tmpfs /tmp
$B mkdir -p /lib/modules "$WORK" "$ST"; $B mount -r -t hostfs -o $MODS none /lib/modules
$B mount -t hostfs -o "$WORK" none "$WORK"; $B mount -t hostfs -o "$ST" none "$ST"
$B umount -l /.oldroot
exec /bin/sh "$ST/stage2.sh" "$ST"
"""

def find_kernel() -> Path | None:
    """The UML kernel, if Debian's user-mode-linux package is installed."""
    return KERNEL if KERNEL.exists() and MODULES.is_dir() else None


def ensure_kernel() -> Path:
    """The UML kernel, installing Debian's user-mode-linux package when missing (needs root)."""
    if find_kernel() is None:
        if os.geteuid() != 0:
            raise GuestError("user-mode-linux is not installed; as root: apt-get install user-mode-linux")
        subprocess.run(["apt-get", "install", "-y", "-qq", "user-mode-linux"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    kernel = find_kernel()
    if kernel is None:
        raise GuestError(f"{KERNEL} is still missing after installing user-mode-linux")
    return kernel


def run(argv: list[str], *, cwd: str | os.PathLike[str] = ".", env: dict[str, str] | None = None,
        mem: str = "2G", timeout: float = 1800, console: int | None = None) -> int:
    """Boot the guest, run ``argv`` as root in ``cwd``, its console to ``console`` (a file descriptor;
    stdout by default); its exit code.

    Returns 125 when the command never ran (the guest failed to boot or timed out).
    Every linux.uml process is gone when this returns.
    """
    kernel = ensure_kernel()
    cwd = Path(cwd).resolve()
    state = Path(tempfile.mkdtemp(prefix="distem-uml-"))
    try:
        (state / "umldir").mkdir()
        (state / "init.sh").write_text(_INIT)
        (state / "stage2.sh").write_text(stage2_script(GUEST_MODULES))
        (state / "init.sh").chmod(0o755)
        (state / "job.sh").write_text(job_script(argv, cwd, dict(os.environ if env is None else env), "uml"))
        cmd = [str(kernel), f"mem={mem}", f"uml_dir={state / 'umldir'}", "root=/dev/root", "rootfstype=hostfs",
               "rootflags=/", "ro", f"init={state / 'init.sh'}", f"uml.work={cwd}", f"uml.state={state}",
               f"uml.mods={MODULES}", "con0=null,fd:1", "con=null", "quiet"]
        # Guest memory is a file in TMPDIR: it needs room and exec rights; /dev/shm has both.
        return boot(cmd, state, timeout=timeout, console=console, env={**os.environ, "TMPDIR": "/dev/shm"})
    finally:
        shutil.rmtree(state, ignore_errors=True)
