"""cgroup hierarchies on this pnode: which are mounted where, writing limits, reading usage, removing a platform's subtree."""

from __future__ import annotations

import os
import signal
import stat
import time
from dataclasses import dataclass, field


_NOT_CONTROLLERS = {"rw", "ro", "xattr", "clone_children", "cpuset_v2_mode", "relatime"}


@dataclass
class Hierarchies:
    v1: dict[str, str] = field(default_factory=dict)  # controller -> mount point
    v2: str | None = None  # the cgroup2 mount point
    v2_controllers: list[str] = field(default_factory=list)

    def mounts(self) -> list[str]:
        points = sorted(set(self.v1.values()))
        return points + ([self.v2] if self.v2 else [])


def hierarchies(mountinfo: str = "/proc/self/mountinfo") -> Hierarchies:
    found = Hierarchies()
    with open(mountinfo) as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fstype, _source, options = (right.split() + ["", "", ""])[:3]
            point = left.split()[4]
            if fstype == "cgroup":
                for opt in options.split(","):
                    if opt.startswith("name="):
                        found.v1[opt] = point
                    elif opt not in _NOT_CONTROLLERS and "=" not in opt and not opt.startswith("no"):
                        found.v1.setdefault(opt, point)
            elif fstype == "cgroup2" and found.v2 is None:
                found.v2 = point
    if found.v2:
        try:
            with open(os.path.join(found.v2, "cgroup.controllers")) as f:
                found.v2_controllers = f.read().split()
        except OSError:
            pass
    return found


def current(pid: str = "self") -> dict[str, str]:
    """The cgroup of a process in each hierarchy: {mount point: path}."""
    h = hierarchies()
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                mount = h.v2
            else:
                mount = next((h.v1[c] for c in controllers.split(",") if c in h.v1), None)
            if mount:
                out[mount] = path
    return out


def enter(home: dict[str, str]) -> None:
    """Move this process back into ``home`` (as returned by ``current``) where it has drifted.

    LXC moves the process that starts a container into that container's
    monitor cgroup; the agent must not stay inside the platform's subtree.
    """
    here = current()
    for mount, path in home.items():
        if here.get(mount) != path:
            _write(os.path.join(mount, path.lstrip("/"), "cgroup.procs"), str(os.getpid()))


def write(version: int, controller: str, relpath: str, file: str, value: str) -> None:
    """Write a cgroup file of a running vnode; OSError names the file when the kernel refuses."""
    h = hierarchies()
    mount = h.v2 if version == 2 else h.v1.get(controller)
    if mount is None:
        raise OSError(f"no cgroup v{version} hierarchy with the {controller} controller is mounted")
    path = os.path.join(mount, relpath, file)
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise OSError(exc.errno, f"writing {value!r} to {path}: {exc.strerror}") from exc


def _write(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError:
        pass


def _kill_all(directory: str) -> None:
    """Thaw, then SIGKILL every process left in one cgroup (everything there is ours by construction)."""
    _write(os.path.join(directory, "freezer.state"), "THAWED")  # v1: frozen tasks cannot die
    _write(os.path.join(directory, "cgroup.freeze"), "0")  # v2
    try:
        with open(os.path.join(directory, "cgroup.procs")) as f:
            pids = [int(p) for p in f.read().split()]
    except OSError:
        return
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def remove_subtree(relpath: str, timeout: float = 5.0) -> list[str]:
    """Empty and rmdir ``relpath`` and everything below it in every hierarchy; returns what could not go.

    LXC's monitor process of the last container stopped can linger in its
    monitor cgroup, so what is left inside is killed first. Directories go
    bottom-up; one whose last process just died may refuse (EBUSY) a moment.
    """
    left = []
    deadline = time.monotonic() + timeout
    for mount in hierarchies().mounts():
        top = os.path.join(mount, relpath)
        if not os.path.isdir(top):
            continue
        dirs = sorted((dirpath for dirpath, _, _ in os.walk(top)), key=lambda p: p.count("/"), reverse=True)
        for path in dirs:
            _kill_all(path)
        for path in dirs:
            while True:
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        left.append(path)
                        break
                    _kill_all(path)
                    time.sleep(0.02)
    return left


def block_device(path: str) -> dict[str, object]:
    """What IO throttling needs of a device: its "major:minor", or why it can't be throttled."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return {"error": f"{exc.strerror} on this pnode"}
    if not stat.S_ISBLK(st.st_mode):
        return {"error": "not a block device"}
    devnum = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    if os.path.exists(f"/sys/dev/block/{devnum}/partition"):
        disk = os.path.basename(os.path.dirname(os.path.realpath(f"/sys/dev/block/{devnum}")))
        return {"error": f"a partition ({devnum}); the kernel throttles whole disks only: use /dev/{disk}"}
    return {"devnum": devnum}


def _read(path: str) -> str:
    """A cgroup file's text, "" when it cannot be read. Plain os calls: the monitor reads six files a
    vnode each tick, and open() with its text wrapper made a 100-vnode tick 3.4 ms longer (11.8 ms)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        chunks = [os.read(fd, 65536)]
        while len(chunks[-1]) == 65536:  # a short read is the end: no second call for small files
            chunks.append(os.read(fd, 65536))
        return b"".join(chunks).decode()
    except OSError:
        return ""
    finally:
        os.close(fd)


def usage(relpath: str, h: Hierarchies | None = None) -> dict[str, int]:
    """CPU time and the time its quota throttled it (ns), memory in use and at its peak, bytes
    read/written by a cgroup, from whichever hierarchy has each controller; 0 where unknown (a
    stopped vnode has no cgroup). ``h``: the hierarchies, when the caller has read them already."""
    h = h or hierarchies()
    out = {"cpu_ns": 0, "cpu_throttled_ns": 0, "memory_bytes": 0, "memory_peak_bytes": 0,
           "io_read_bytes": 0, "io_write_bytes": 0}
    v2 = os.path.join(h.v2, relpath) if h.v2 else ""
    v2_cpu = dict(line.split() for line in _read(os.path.join(v2, "cpu.stat")).splitlines()) if v2 else {}
    if "cpuacct" in h.v1:
        out["cpu_ns"] = int(_read(os.path.join(h.v1["cpuacct"], relpath, "cpuacct.usage")) or 0)
    else:
        out["cpu_ns"] = int(v2_cpu.get("usage_usec", 0)) * 1000
    if "cpu" in h.v1:
        stats = dict(line.split() for line in _read(os.path.join(h.v1["cpu"], relpath, "cpu.stat")).splitlines())
        out["cpu_throttled_ns"] = int(stats.get("throttled_time", 0))
    else:
        out["cpu_throttled_ns"] = int(v2_cpu.get("throttled_usec", 0)) * 1000
    if "memory" in h.v1:
        out["memory_bytes"] = int(_read(os.path.join(h.v1["memory"], relpath, "memory.usage_in_bytes")) or 0)
        out["memory_peak_bytes"] = int(_read(os.path.join(h.v1["memory"], relpath, "memory.max_usage_in_bytes")) or 0)
    elif v2:
        out["memory_bytes"] = int(_read(os.path.join(v2, "memory.current")) or 0)
        out["memory_peak_bytes"] = int(_read(os.path.join(v2, "memory.peak")) or 0)  # kernel >= 5.19
    if "blkio" in h.v1:
        for line in _read(os.path.join(h.v1["blkio"], relpath, "blkio.throttle.io_service_bytes_recursive")).splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] in ("Read", "Write"):
                out[f"io_{parts[1].lower()}_bytes"] += int(parts[2])
    elif v2:
        for line in _read(os.path.join(v2, "io.stat")).splitlines():
            fields = dict(kv.split("=") for kv in line.split()[1:] if "=" in kv)
            out["io_read_bytes"] += int(fields.get("rbytes", 0))
            out["io_write_bytes"] += int(fields.get("wbytes", 0))
    return out
