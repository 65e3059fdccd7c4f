"""Executing plan operations: journal first, then create; a failure rolls the batch back."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute

from . import cgroups, links, matrix, shaping, underlay
from .routing import VnodeRouting
from .userspace import DelayLines
from .system import mounted, run
from .journal import Entry, Journal
from .undo import undo

Op = dict[str, Any]


def extract_image(tarball: str, target: str) -> None:
    """Into the pnode's image cache (shared by platforms, so not journalled), unless it is there;
    atomic by rename."""
    if os.path.isdir(target):
        return
    parent = os.path.dirname(target)
    tmp = f"{parent}.tmp-{uuid.uuid4().hex[:8]}"
    os.makedirs(tmp)
    try:
        run(["tar", "-xpf", tarball, "-C", tmp, "--numeric-owner"])
        os.makedirs(parent, exist_ok=True)
        os.rename(tmp, target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.isdir(target):  # another agent may have won the race
            raise


def images_missing(images: dict[str, list[str]]) -> list[str]:
    """Of ``{sha: [cache directory, tarball path]}``, the images this pnode can get neither from
    its cache nor from a tarball at that path: the controller sends those."""
    return [sha for sha, (target, tarball) in images.items() if not os.path.isdir(target)
            and not os.path.isfile(tarball)]


def receive_image(target: str, data: bytes) -> None:
    """An image tarball sent by the controller, extracted into the cache at ``target``."""
    os.makedirs(os.path.dirname(os.path.dirname(target)), exist_ok=True)
    tarball = f"{os.path.dirname(target)}.tar-{uuid.uuid4().hex[:8]}"
    try:
        with open(tarball, "wb") as f:
            f.write(data)
        extract_image(tarball, target)
    finally:
        os.unlink(tarball)


class OpFailed(Exception):
    """Operation ``index`` of a batch failed; what the batch had created was removed."""

    def __init__(self, index: int, op: Op, cause: BaseException, rollback_failures: list[str]) -> None:
        self.index, self.op, self.rollback_failures = index, op, rollback_failures
        self.errno = getattr(cause, "errno", None) or getattr(cause, "code", None)
        self.target = (op.get("name") or op.get("target") or op.get("path") or op.get("mountpoint")
                       or op.get("vnode"))
        super().__init__(f"{type(cause).__name__}: {cause}")


def _no_vnodes(name: str) -> int:
    raise OSError(errno.ESRCH, f"this applier reaches no vnode ({name})")


class Applier:
    """Runs operations against this pnode, recording each creation in ``journal`` first."""

    def __init__(self, journal: Journal, ipr: IPRoute, delay_lines: DelayLines | None = None,
                 init_pid: Callable[[str], int] | None = None) -> None:
        """``init_pid``: a running vnode's init pid, for the operations inside its network namespace."""
        self.journal, self.ipr, self.delay_lines = journal, ipr, delay_lines
        self.routing = VnodeRouting(init_pid or _no_vnodes)
        self._batch: list[Entry] = []
        self.handlers: dict[str, Callable[[Op], None]] = {
            "bridge_create": self.bridge_create, "vxlan_create": self.vxlan_create, "uplink": self.uplink,
            "image_extract": self.image_extract,
            "tree_copy": self.tree_copy, "overlay_mount": self.overlay_mount, "make_dir": self.make_dir, "btrfs_loop": self.btrfs_loop,
            "btrfs_base": self.btrfs_base, "btrfs_snapshot": self.btrfs_snapshot,
            "file_write": self.file_write, "container_define": self.container_define,
            "ifb_create": self.ifb_create,
            "redirect_ingress": lambda op: shaping.redirect_ingress(self.ipr, op["device"], op["ifb"]),
            "htb_replace": lambda op: shaping.htb_replace(self.ipr, op["device"], op["rate_bps"], op["burst_bytes"]),
            "netem_replace": lambda op: shaping.netem_replace(self.ipr, op["device"], op["limit"], op["limits"]),
            "fifo_replace": lambda op: shaping.fifo_replace(self.ipr, op["device"], op["limit"]),
            "matrix_replace": lambda op: matrix.matrix_replace(self.ipr, op),
            "shaping_clear": lambda op: shaping.shaping_clear(self.ipr, op["device"], op["root"], op["ingress"]),
            "delayline_set": self.delayline_set, "delayline_clear": self.delayline_clear,
            "cgroup_write": lambda op: cgroups.write(op["version"], op["controller"], op["path"], op["file"], op["value"]),
            "forwarding_set": lambda op: self.routing.set_forwarding(op["vnode"], op["enabled"]),
            "route_replace": lambda op: self.routing.replace(op["vnode"], op["destination"], op["via"], op["device"]),
            "route_delete": lambda op: self.routing.delete(op["vnode"], op["destination"]),
        }

    def apply(self, ops: list[Op], progress: Callable[[int], None] = lambda done: None) -> int:
        """Apply ``ops`` in order; all or nothing."""
        self._batch = []
        try:
            for index, op in enumerate(ops):
                try:
                    self.handlers[op["op"]](op)
                except Exception as exc:
                    failures = undo(self.journal, self._batch)
                    raise OpFailed(index, op, exc, failures) from exc
                progress(index + 1)
        finally:
            self.routing.close()  # its sockets hold vnodes' namespaces: not past the batch
        if self._batch:  # an fsync costs milliseconds: only when something was recorded
            self.journal.sync()
        return len(ops)

    def _record(self, kind: str, ident: str, op: Op, **data: Any) -> Entry:
        entry = self.journal.add(kind, ident, op["owner"], **data)
        self._batch.append(entry)
        return entry

    # -- one method per operation kind (see distem.plan.ops) ---------------------------
    def bridge_create(self, op: Op) -> None:
        self._record("link", op["name"], op, alias=op["alias"])
        links.bridge_create(self.ipr, op["name"], op["alias"], op["mtu"])

    def vxlan_create(self, op: Op) -> None:
        self._record("link", op["name"], op, alias=op["alias"])
        underlay.vxlan_create(self.ipr, op)

    def uplink(self, op: Op) -> None:
        moved = underlay.uplink_state(self.ipr, op["root"])  # journalled: undo gives these back
        self._record("uplink", op["root"], op, bridge=op["bridge"], moved=moved)
        underlay.uplink(self.ipr, op["bridge"], moved)

    def image_extract(self, op: Op) -> None:
        extract_image(op["tarball"], op["target"])

    def tree_copy(self, op: Op) -> None:
        if os.path.isdir(op["target"]):
            return
        self._record("dir", op["target"], op)
        os.makedirs(os.path.dirname(op["target"]), exist_ok=True)
        run(["cp", "-a", "--reflink=auto", op["source"], op["target"]])

    def overlay_mount(self, op: Op) -> None:
        target = op["target"]
        if mounted(target):
            return
        self._record("dir", os.path.dirname(target), op)
        for path in (op["upper"], op["work"], target):
            os.makedirs(path, exist_ok=True)
        self._record("mount", target, op)
        run(["mount", "-t", "overlay", "overlay", "-o",
              f"lowerdir={op['lower']},upperdir={op['upper']},workdir={op['work']}", target])

    def make_dir(self, op: Op) -> None:
        self._record("dir", op["path"], op)
        os.makedirs(op["path"], exist_ok=True)

    def btrfs_loop(self, op: Op) -> None:
        mountpoint = op["mountpoint"]
        if mounted(mountpoint):
            return
        with open(op["image"], "wb") as f:
            f.truncate(op["size"])
        device = run(["losetup", "-f", "--show", op["image"]])
        self._record("loop", device, op, file=op["image"])
        run(["mkfs.btrfs", "-q", device])
        os.makedirs(mountpoint, exist_ok=True)
        self._record("mount", mountpoint, op)
        run(["mount", device, mountpoint])

    def btrfs_base(self, op: Op) -> None:
        target = op["target"]
        if os.path.isdir(target):
            return
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            self._record("dir", parent, op)
            os.makedirs(parent)
        self._record("subvolume", target, op)
        run(["btrfs", "subvolume", "create", target])
        run(["cp", "-a", "--reflink=auto", op["source"] + "/.", target])

    def btrfs_snapshot(self, op: Op) -> None:
        self._record("subvolume", op["target"], op)
        run(["btrfs", "subvolume", "snapshot", op["source"], op["target"]])

    def file_write(self, op: Op) -> None:
        """Inside a directory the journal already owns, so not journalled itself."""
        os.makedirs(os.path.dirname(op["path"]), mode=0o700, exist_ok=True)
        fd = os.open(op["path"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, op["mode"])
        with os.fdopen(fd, "w") as f:
            f.write(op["content"])
        os.chmod(op["path"], op["mode"])

    def ifb_create(self, op: Op) -> None:
        self._record("link", op["name"], op, alias=op["alias"])
        shaping.ifb_create(self.ipr, op["name"], op["alias"])

    def _delay_lines(self) -> DelayLines:
        if self.delay_lines is None:
            raise OSError("this agent has no userspace delay line")
        return self.delay_lines

    def delayline_set(self, op: Op) -> None:
        self._delay_lines().set(op["owner"], op["device"], op["direction"], op["limits"],
                                lambda kind, ident, **data: self._record(kind, ident, op, **data),
                                op.get("destinations"))

    def delayline_clear(self, op: Op) -> None:
        self._delay_lines().clear(op["device"], op["direction"])

    def container_define(self, op: Op) -> None:
        self._record("container", op["name"], op, lxcpath=op["lxcpath"])
        directory = os.path.join(op["lxcpath"], op["name"])
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config"), "w") as f:
            f.write(op["config"])
