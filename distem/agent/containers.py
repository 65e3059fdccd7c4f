"""LXC containers through the python-lxc bindings: lifecycle, state, commands."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

import lxc

# Distem's statuses for LXC's states.
STATUS = {"STOPPED": "DOWN", "STARTING": "RUNNING", "RUNNING": "RUNNING", "STOPPING": "DOWN",
          "ABORTING": "DOWN", "FREEZING": "FROZEN", "FROZEN": "FROZEN", "THAWED": "RUNNING"}
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ContainerError(Exception):
    def __init__(self, name: str, message: str) -> None:
        self.target = name
        super().__init__(message)


def open_container(name: str, lxcpath: str) -> lxc.Container:
    c = lxc.Container(name, lxcpath)
    if not c.defined:
        raise ContainerError(name, f"no container {name!r} under {lxcpath}")
    return c


def _log_tail(name: str, lxcpath: str) -> str:
    try:
        with open(os.path.join(lxcpath, name, "lxc.log")) as f:
            lines = [line.strip() for line in f if " ERROR " in line]
        return " | ".join(lines[-3:])
    except OSError:
        return ""


def start(name: str, lxcpath: str) -> str:
    """Start through the ``lxc-start`` command, not the bindings: a container's monitor process is a fork of
    whoever starts it, and forks of the agent (a 45 MiB Python) share its pages with every monitor, so each
    start copied its page tables and the kernel's reverse maps (DAMON's access checks walk them) grew by one
    mapping a page: the start rate fell as N grew (raw LXC through the bindings, 120 -> 76 per s from the
    first to the tenth 100; through lxc-start, 137 -> 103)."""
    c = open_container(name, lxcpath)
    if c.running:
        return c.state
    with tempfile.TemporaryFile() as err:  # a file, not a pipe: the monitor must not hold our end open
        done = subprocess.run(["lxc-start", "-n", name, "-P", lxcpath], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=err)
        err.seek(0)
        said = err.read().decode(errors="replace").strip().replace("\n", " | ")
    if done.returncode:
        raise ContainerError(name, f"lxc start failed: {_log_tail(name, lxcpath) or said or 'see ' + lxcpath + '/' + name + '/lxc.log'}")
    return lxc.Container(name, lxcpath).state


def stop(name: str, lxcpath: str) -> str:
    """Kill the container (a graceful shutdown of busybox init costs ~2 s a vnode), through ``lxc-stop``:
    the bindings' stop holds Python's lock while it waits, and the agent's other threads (the event
    timeline, the monitor) stood still for the whole stop (40 ms here, 280 ms under QEMU)."""
    c = lxc.Container(name, lxcpath)
    if c.defined and c.running:
        done = subprocess.run(["lxc-stop", "-k", "-n", name, "-P", lxcpath], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if done.returncode and c.running:
            said = done.stderr.decode(errors="replace").strip().replace("\n", " | ")
            raise ContainerError(name, f"lxc stop failed: {said or _log_tail(name, lxcpath)}")
    return lxc.Container(name, lxcpath).state


LOCKS = "/run/lxc/lock"


def lock_dir(path: str) -> str:
    """Where LXC (run as root) keeps the locks of the containers under ``path``."""
    return LOCKS + os.path.abspath(path)


def forget_lock(name: str, lxcpath: str) -> None:
    """Remove LXC's lock file of a destroyed container, and its directories once empty: LXC leaves one per
    container under /run/lxc/lock/<lxcpath>/ (2,562 directories, 12 MB of tmpfs, on a machine after a
    few days of tests)."""
    directory = lock_dir(lxcpath)
    try:
        os.unlink(os.path.join(directory, "." + name))
    except FileNotFoundError:
        pass
    try:
        while directory != LOCKS:
            os.rmdir(directory)
            directory = os.path.dirname(directory)
    except OSError:  # still holding other containers' locks
        pass


def stop_many(names: list[str], lxcpath: str, timeout: float = 10.0) -> dict[str, str]:
    """Kill every running container of ``names`` at once, then wait for them all; their states. One at a
    time each stop waits for its network namespace's teardown, which the kernel does one after the other
    (100 busybox vnodes: 3.6 s); killed together, their namespaces go in one batch (0.25 s)."""
    found = {name: lxc.Container(name, lxcpath) for name in names}
    for c in found.values():
        if c.defined and c.running:
            try:
                os.kill(c.init_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout
    waiting = [n for n, c in found.items() if c.defined]
    while waiting and time.monotonic() < deadline:
        waiting = [n for n in waiting if lxc.Container(n, lxcpath).running]
        if waiting:
            time.sleep(0.02)
    return {name: stop(name, lxcpath) if name in waiting else "STOPPED" for name in names}


def freeze(name: str, lxcpath: str) -> str:
    c = open_container(name, lxcpath)
    if not c.freeze():
        raise ContainerError(name, f"cannot freeze a container in state {c.state}")
    return c.state


def unfreeze(name: str, lxcpath: str) -> str:
    c = open_container(name, lxcpath)
    if not c.unfreeze():
        raise ContainerError(name, f"cannot unfreeze a container in state {c.state}")
    return c.state


def state(name: str, lxcpath: str) -> dict[str, object]:
    c = lxc.Container(name, lxcpath)
    if not c.defined:
        return {"state": "UNDEFINED", "pid": None}
    return {"state": c.state, "pid": c.init_pid if c.running else None}


def init_pid(name: str, lxcpath: str) -> int:
    """The pid of a running container's init, through which its namespaces are reached."""
    c = lxc.Container(name, lxcpath)
    if not (c.defined and c.running):
        raise ContainerError(name, "vnode is not running")
    return int(c.init_pid)


def execute(name: str, lxcpath: str, argv: list[str], timeout: float | None = None) -> tuple[int, str, str, bool]:
    """Run ``argv`` inside the container (no sshd needed); returns (status, stdout, stderr, killed at the
    timeout).

    ``attach`` (not ``attach_wait``) returns the child's pid, so the wait
    releases the GIL and several commands can run at once from threads.
    """
    c = open_container(name, lxcpath)
    if not c.running:
        raise ContainerError(name, f"vnode is not running (state {c.state})")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        pid = c.attach(lxc.attach_run_command, argv, stdout=out.fileno(), stderr=err.fileno(),
                       env_policy=lxc.LXC_ATTACH_CLEAR_ENV, extra_env_vars=[_PATH, "HOME=/root", "TERM=dumb"])
        if pid < 0:
            raise ContainerError(name, "lxc attach failed")
        status, timed_out = _wait(pid, timeout)
        out.seek(0), err.seek(0)
        return status, out.read().decode(errors="replace"), err.read().decode(errors="replace"), timed_out


def _wait(pid: int, timeout: float | None) -> tuple[int, bool]:
    """The exit status, and whether it was killed at the timeout (a SIGKILL's -9 alone could be OOM's)."""
    if timeout is None:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return -signal.SIGKILL, True


def listening(pid: int, port: int) -> bool:
    """Whether a TCP socket listens on ``port`` in the network namespace of process ``pid``."""
    for table in ("tcp", "tcp6"):
        try:
            with open(f"/proc/{pid}/net/{table}") as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except (OSError, StopIteration):
            continue
    return False
