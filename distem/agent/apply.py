"""Executing plan operations: journal first, then create; a failure rolls the batch back."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute

from . import cgroups, links, matrix, shaping, underlay, wire
from .routing import VnodeRouting
from .userspace import DelayLines
from .system import mounted, run
from .journal import Entry, Journal
from .undo import undo

Op = dict[str, Any]
log = logging.getLogger(__name__)
NEIGH = "/proc/sys/net/ipv4/neigh/default/{}"


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
                       or op.get("vnode") or op.get("device"))
        super().__init__(f"{type(cause).__name__}: {cause}")


def _no_vnodes(name: str) -> int:
    raise OSError(errno.ESRCH, f"this applier reaches no vnode ({name})")


class Applier:
    """Runs operations against this pnode, recording each creation in ``journal`` first.

    One method per operation of the wire (distem/wire.py), of the same name, taking the
    operation's fields and its owner as keywords."""

    def __init__(self, journal: Journal, ipr: IPRoute, delay_lines: DelayLines | None = None,
                 init_pid: Callable[[str], int] | None = None) -> None:
        """``init_pid``: a running vnode's init pid, for the operations inside its network namespace."""
        self.journal, self.ipr, self.delay_lines = journal, ipr, delay_lines
        self.routing = VnodeRouting(init_pid or _no_vnodes)
        self._batch: list[Entry] = []
        self.handlers: dict[str, Callable[..., None]] = {name: getattr(self, name) for name in wire.OPS}

    def apply(self, ops: list[Op], progress: Callable[[int], None] = lambda done: None) -> int:
        """Apply ``ops`` in order; all or nothing. A batch that does not match the wire is refused whole,
        before anything is changed (a controller of another version)."""
        for index, op in enumerate(ops):
            wrong = wire.check(op)
            if wrong:
                raise OpFailed(index, op, ValueError(f"not an operation of this agent's wire: {wrong}"), [])
        self._batch = []
        try:
            for index, op in enumerate(ops):
                try:
                    self.handlers[op["op"]](**{k: v for k, v in op.items() if k != "op"})
                except Exception as exc:
                    failures = undo(self.journal, self._batch)
                    raise OpFailed(index, op, exc, failures) from exc
                progress(index + 1)
        finally:
            self.routing.close()  # its sockets hold vnodes' namespaces: not past the batch
        if self._batch:  # an fsync costs milliseconds: only when something was recorded
            self.journal.sync()
        return len(ops)

    def rehearse(self, ops: list[Op]) -> None:
        """Go through the paths ``ops`` will take, changing nothing (a timeline does, just before their
        instant): on a VM, code idle for a second runs 10 to 60 times slower than warm (a shared core's
        caches and TLB), and an event applied cold took 55-140 ms where warm it takes 5-15."""
        devices = {op["device"] for op in ops if "device" in op}
        line = next((op for op in ops if op["op"].startswith("delayline_")), None)
        if line is not None and self.delay_lines is not None:  # one request and one iptables run warm them
            self.delay_lines.rehearse(line["device"], line.get("direction", "output"))
        for device in sorted(devices):  # a matrix's many leaves on one device: looked up once
            links.alias_of(self.ipr, device)

    def _record(self, kind: str, ident: str, owner: str, **data: Any) -> Entry:
        entry = self.journal.add(kind, ident, owner, **data)
        self._batch.append(entry)
        return entry

    # -- vnetworks -------------------------------------------------------------------
    def bridge_create(self, owner: str, name: str, alias: str, mtu: int) -> None:
        self._record("link", name, owner, alias=alias)
        links.bridge_create(self.ipr, name, alias, mtu)

    def bridge_extend(self, owner: str, bridge: str, part: str, trunk: list[str], alias: str, mtu: int) -> None:
        if links.alias_of(self.ipr, part) == alias:
            return  # made by an earlier batch, whose vnodes use it: not recorded again (its undo would remove it)
        self._record("link", part, owner, alias=alias)
        self._record("link", trunk[0], owner, alias=alias)  # its peer goes with it
        links.bridge_create(self.ipr, part, alias, mtu)
        links.trunk(self.ipr, bridge, part, trunk[0], trunk[1], alias, mtu)

    def vxlan_create(self, owner: str, name: str, alias: str, vni: int, root: str, local: str, port: int, mtu: int,
                     bridge: str, remotes: list[str]) -> None:
        self._record("link", name, owner, alias=alias)
        underlay.vxlan_create(self.ipr, name, alias, vni, root, local, port, mtu, bridge, remotes)

    def uplink(self, owner: str, bridge: str, root: str) -> None:
        moved = underlay.uplink_state(self.ipr, root)  # journalled: undo gives these back
        self._record("uplink", root, owner, bridge=bridge, moved=moved)
        underlay.uplink(self.ipr, bridge, moved)

    # -- filesystems and containers ----------------------------------------------------
    def image_extract(self, owner: str, tarball: str, sha: str, target: str) -> None:
        extract_image(tarball, target)

    def tree_copy(self, owner: str, source: str, target: str) -> None:
        if os.path.isdir(target):
            return
        self._record("dir", target, owner)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        run(["cp", "-a", "--reflink=auto", source, target])

    def overlay_mount(self, owner: str, lower: str, upper: str, work: str, target: str) -> None:
        if mounted(target):
            return
        self._record("dir", os.path.dirname(target), owner)
        for path in (upper, work, target):
            os.makedirs(path, exist_ok=True)
        self._record("mount", target, owner)
        run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower},upperdir={upper},workdir={work}", target])

    def make_dir(self, owner: str, path: str) -> None:
        self._record("dir", path, owner)
        os.makedirs(path, exist_ok=True)

    def btrfs_loop(self, owner: str, image: str, size: int, mountpoint: str) -> None:
        if mounted(mountpoint):
            return
        with open(image, "wb") as f:
            f.truncate(size)
        device = run(["losetup", "-f", "--show", image])
        self._record("loop", device, owner, file=image)
        run(["mkfs.btrfs", "-q", device])
        os.makedirs(mountpoint, exist_ok=True)
        self._record("mount", mountpoint, owner)
        run(["mount", device, mountpoint])

    def btrfs_base(self, owner: str, source: str, target: str) -> None:
        if os.path.isdir(target):
            return
        parent = os.path.dirname(target)
        if not os.path.isdir(parent):
            self._record("dir", parent, owner)
            os.makedirs(parent)
        self._record("subvolume", target, owner)
        run(["btrfs", "subvolume", "create", target])
        run(["cp", "-a", "--reflink=auto", source + "/.", target])

    def btrfs_snapshot(self, owner: str, source: str, target: str) -> None:
        self._record("subvolume", target, owner)
        run(["btrfs", "subvolume", "snapshot", source, target])

    def file_write(self, owner: str, path: str, content: str, mode: int) -> None:
        """Inside a directory the journal already owns, so not journalled itself."""
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(content)
        os.chmod(path, mode)

    def container_define(self, owner: str, name: str, lxcpath: str, config: str) -> None:
        self._record("container", name, owner, lxcpath=lxcpath)
        directory = os.path.join(lxcpath, name)
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "config"), "w") as f:
            f.write(config)

    # -- traffic shaping ---------------------------------------------------------------
    def ifb_create(self, owner: str, name: str, alias: str) -> None:
        self._record("link", name, owner, alias=alias)
        shaping.ifb_create(self.ipr, name, alias)

    def redirect_ingress(self, owner: str, device: str, ifb: str) -> None:
        shaping.redirect_ingress(self.ipr, device, ifb)

    def htb_replace(self, owner: str, device: str, rate_bps: int, burst_bytes: int) -> None:
        shaping.htb_replace(self.ipr, device, rate_bps, burst_bytes)

    def netem_replace(self, owner: str, device: str, limit: int, limits: dict[str, Any]) -> None:
        shaping.netem_replace(self.ipr, device, limit, limits)

    def fifo_replace(self, owner: str, device: str, limit: int) -> None:
        shaping.fifo_replace(self.ipr, device, limit)

    def matrix_replace(self, owner: str, device: str, rate_bps: int, burst_bytes: int, table: bool,
                       set_classes: list[Any], drop_classes: list[int], entries: list[Any],
                       drop_entries: list[Any]) -> None:
        matrix.matrix_replace(self.ipr, device, rate_bps, burst_bytes, table, set_classes, drop_classes, entries,
                              drop_entries)

    def shaping_clear(self, owner: str, device: str, root: bool, ingress: bool) -> None:
        shaping.shaping_clear(self.ipr, device, root, ingress)

    def _delay_lines(self) -> DelayLines:
        if self.delay_lines is None:
            raise OSError("this agent has no userspace delay line")
        return self.delay_lines

    def delayline_set(self, owner: str, device: str, direction: str, chain: str, comment: str,
                      limits: dict[str, Any], destinations: dict[str, int]) -> None:
        self._delay_lines().set(owner, device, direction, limits,
                                lambda kind, ident, **data: self._record(kind, ident, owner, **data), destinations)

    def delayline_cells(self, owner: str, device: str, destinations: dict[str, int], drop: list[str]) -> None:
        self._delay_lines().cells(device, destinations, drop)

    def delayline_clear(self, owner: str, device: str, direction: str, chain: str, comment: str) -> None:
        self._delay_lines().clear(device, direction)

    def link_state(self, owner: str, device: str, up: bool) -> None:
        self.ipr.link("set", index=shaping.index_of(self.ipr, device), state="up" if up else "down")

    def partition_set(self, owner: str, device: str, sink: str, alias: str, addresses: list[str]) -> None:
        if addresses and not self.journal.has("link", sink):  # the platform's, not this vnode's: it stays
            self._record("link", sink, "platform", alias=alias)
            shaping.sink_create(self.ipr, sink, alias)
        shaping.partition_set(self.ipr, device, sink, addresses)

    def cgroup_write(self, owner: str, version: int, controller: str, path: str, file: str, value: str) -> None:
        cgroups.write(version, controller, path, file, value)

    def neighbour_room(self, owner: str, gc_thresh2: int, gc_thresh3: int, netdev_max_backlog: int) -> None:
        for path, wanted in ((NEIGH.format("gc_thresh2"), gc_thresh2), (NEIGH.format("gc_thresh3"), gc_thresh3),
                             ("/proc/sys/net/core/netdev_max_backlog", netdev_max_backlog)):
            if not os.path.exists(path):  # a pnode in a network namespace (local_cluster): the host's, not ours
                log.info("%s is not in this network namespace: it is its host's", path)
                continue
            with open(path) as f:
                old = int(f.read())
            if old < wanted:  # never lowered; what it was before the first raise is what is put back
                earlier = self.journal.get("sysctl", path)
                if earlier is not None:
                    self.journal.remove(earlier)
                self._record("sysctl", path, owner, old=earlier["old"] if earlier else old, value=wanted)
                with open(path, "w") as f:
                    f.write(str(wanted))

    # -- routing inside a running vnode's network namespace ---------------------------------
    def forwarding_set(self, owner: str, vnode: str, enabled: bool) -> None:
        self.routing.set_forwarding(vnode, enabled)

    def route_replace(self, owner: str, vnode: str, destination: str, via: str, device: str) -> None:
        self.routing.replace(vnode, destination, via, device)

    def route_delete(self, owner: str, vnode: str, destination: str) -> None:
        self.routing.delete(vnode, destination)

    def neighbours_set(self, owner: str, vnode: str, device: str, entries: list[list[str]]) -> None:
        self.routing.set_neighbours(vnode, device, entries)

    # -- a running vnode's interfaces --------------------------------------------------
    def veth_attach(self, owner: str, vnode: str, name: str, alias: str, bridge: str, iface: str, mac: str,
                    address: str, broadcast: str, mtu: int) -> None:
        self._record("link", name, owner, alias=alias)
        self.routing.attach_veth(self.ipr, vnode, name, alias, bridge, iface, mac, address, broadcast, mtu)

    def link_remove(self, owner: str, device: str, alias: str) -> None:
        links.link_delete(self.ipr, device, alias, unaliased=True)
        if self.journal.has("link", device):
            self.journal.remove({"kind": "link", "id": device})
