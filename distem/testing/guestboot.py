"""What every guest-kernel backend shares: the in-guest stage 2, the job script, booting and waiting."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
from pathlib import Path

log = logging.getLogger(__name__)

GUEST_MODULES = ("sch_netem", "sch_htb", "sch_tbf", "sch_ingress", "cls_u32", "act_mirred", "ifb", "veth",
                 "bridge", "vxlan", "overlay", "loop", "btrfs")


class GuestError(RuntimeError):
    """A guest kernel is missing or cannot run."""


# Stage 2, the same in every guest kernel (run by the host's /bin/sh, with the root, tmpfs /tmp and /run,
# the working directory, $ST and /lib/modules in place): what the tests need mounted and loaded, then the job.
_STAGE2 = r"""ST=$1
B=/bin/busybox
mountpoint -q /proc || $B mount -t proc proc /proc
$B mount -t sysfs sys /sys; mountpoint -q /dev || $B mount -t devtmpfs dev /dev
$B mkdir -p /dev/pts /dev/shm; $B mount -t devpts devpts /dev/pts; $B mount -t tmpfs tmpfs /dev/shm
[ -e /sbin/modprobe ] || $B ln -s /bin/busybox /sbin/modprobe
echo /sbin/modprobe > /proc/sys/kernel/modprobe
for m in __MODULES__; do $B modprobe $m 2>/dev/null || echo "guest: no module $m"; done
$B mount -t cgroup2 none /sys/fs/cgroup
for c in cpu cpuset memory io pids; do echo "+$c" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; done
$B hostname distem-guest; $B ip link set lo up
/bin/sh "$ST/job.sh"; echo $? > "$ST/rc"
$B sync; $B poweroff -f
"""


def stage2_script(modules: tuple[str, ...]) -> str:
    return _STAGE2.replace("__MODULES__", " ".join(modules))


def job_script(argv: list[str], cwd: Path, env: dict[str, str], kind: str) -> str:
    """The job's shell script: the caller's environment, ``DISTEM_IN_GUEST=kind``, ``argv`` in ``cwd``."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items())
                      if k.isidentifier() and k not in ("PWD", "OLDPWD", "SHLVL", "_", "TMPDIR", "DISTEM_IN_GUEST"))
    return f"{exports}export DISTEM_IN_GUEST={kind}\ncd {shlex.quote(str(cwd))} || exit 125\n{shlex.join(argv)}\n"


def boot(cmd: list[str], state: Path, *, timeout: float, console: int | None,
         env: dict[str, str] | None = None) -> int:
    """Run a guest kernel's command line until the guest powers off; the job's exit code from
    ``state/rc`` (125: the job never ran, or the guest outlived ``timeout`` and was killed).
    Every process of the guest is gone when this returns (UML runs several per guest)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=console, env=env,
                            start_new_session=True)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        log.error("the guest did not finish in %s s; killing it", timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    rc = state / "rc"
    return int(rc.read_text()) if rc.exists() else 125
