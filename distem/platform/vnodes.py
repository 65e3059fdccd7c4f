"""Vnodes: created on their pnodes all or none, started (then shaped and routed), stopped, frozen,
removed, and commands run in them."""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import replace
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import AgentError, ValidationError
from ..model import DOWN, FROZEN, READY, RUNNING, PlatformModel, SSHKeys, VNode, VNodeRequest
from ..model.descriptions import parse_address, parse_iface, parse_mac, parse_pairs
from ..plan import PnodePaths, vnodes_plan
from ..plan.deploy import container_define, iface_attach, iface_detach, writable_root
from ..plan.neighbours import SMALL, etc_plan, given_hosts_text, hosts_text, neighbour_ops, neighbour_room
from ..plan.ops import NeighbourRoom
from ..wire import vnode_owner
from .builders import Argv
from .image_cache import ImageCache
from .links import Links
from .matrix import Matrix
from .pool import PnodePool
from .resources import Resources
from .routes import Routes
from .ssh_keys import platform_keys

log = logging.getLogger(__name__)

AFTER = {"start": RUNNING, "stop": DOWN, "freeze": FROZEN, "unfreeze": RUNNING}
LABEL = {"start": "Starting vnodes", "stop": "Stopping vnodes", "freeze": "Freezing vnodes",
         "unfreeze": "Unfreezing vnodes"}


def as_argv(command: Argv) -> list[str]:
    if isinstance(command, str):
        return ["/bin/sh", "-c", command]
    return [str(a) for a in command]


class VNodes:
    """Owns ``pending``: the vnodes described with ``p.vnode(...)`` (builder handles) and not yet deployed."""

    def __init__(self, model: PlatformModel, pool: PnodePool, paths: dict[str, PnodePaths], images: ImageCache,
                 links: Links, matrix: Matrix, resources: Resources, routes: Routes) -> None:
        self.model, self.pool, self.paths, self.images = model, pool, paths, images
        self.links, self.matrix, self.resources, self.routes = links, matrix, resources, routes
        self.pending: dict[str, Any] = {}  # name -> VNodeHandle
        self.keys: SSHKeys | None = None  # the platform's ssh keys (ssh_keys.py), made at the first vnode
        self.etc_hosts: str | None = None  # set_global_etchosts' text; None: every vnode's name and addresses
        self.room: dict[str, int] = {}  # the ARP entries each pnode's table was last given room for

    def described(self) -> dict[str, dict[str, Any]]:
        """The pending vnodes' descriptions (Distem's dicts, which placement may give a 'host')."""
        return {name: handle._desc for name, handle in self.pending.items()}

    # -- creating and removing ---------------------------------------------------------------
    def create(self, requests: list[VNodeRequest]) -> list[VNode]:
        """Validate, then create filesystems and containers on every pnode concerned: all or none.

        A vnode without a 'host' on a platform of several pnodes is provisional (the model's
        ``provisional``): checked and READY, but made on its pnode only at its start (``realize``), so
        that placement (``run_alevin``) may still choose another, as Distem's scripts expect."""
        for r in requests:
            if r.name in self.pending:
                raise ValidationError("vnode name", r.name, "a vnode of this name is being described "
                                      "with p.vnode(...); deploy or discard it first")
            if r.filesystem.mode == "btrfs":
                self._check_btrfs(r)
        vnodes = self.model.add_vnodes(requests)
        made = [v for v in vnodes if v.name not in self.model.provisional]
        try:
            for vnode in vnodes:
                self.links.check(vnode)
                self.images.sha(vnode.filesystem.image)  # a missing image is named now, not at the start
            self._make(made)
        except (ValidationError, AgentError):
            for vnode in vnodes:
                self.model.remove_vnode(vnode.name)
            raise
        for vnode in vnodes:
            self.model.set_status(vnode.name, READY)
        self.write_etc()
        return [self.model.vnode(v.name) for v in vnodes]

    # -- interfaces, live ----------------------------------------------------------------
    def add_iface(self, vnode: str, name: str, desc: Mapping[str, Any] | None = None) -> None:
        """Distem's ``viface_create``: one more interface, in the vnode's config for its next starts and,
        when it runs, in it now (a veth on its vnetwork's bridge, its limits, the matrix, routes, names)."""
        request = parse_iface(f"{vnode}.vifaces[{name}]", {**(desc or {}), "name": name})
        after = self.model.add_viface(vnode, request)
        iface = after.iface(name)
        try:
            self.links.check(after)
            ops = self._redefined(after)
            if ops and self.model.status[vnode] in (RUNNING, FROZEN):
                ops.append(iface_attach(self.model.platform_id, after, iface, self.model.vnetworks[iface.vnetwork])
                           .to_wire())
                ops += self.links.shaping([vnode]).get(vnode, [])
            if ops:
                self.pool.call(after.host, "apply", ops=ops)
        except (ValidationError, AgentError):
            self.model.remove_viface(vnode, name)
            raise
        self._follow(vnode)

    def remove_iface(self, vnode: str, name: str) -> None:
        """Distem's ``viface_remove``: out of the vnode's config and, when it runs, out of it now."""
        iface = self.model.vnode(vnode).iface(name)
        after = self.model.remove_viface(vnode, name)
        ops = self._redefined(after)
        if ops and self.model.status[vnode] in (RUNNING, FROZEN):
            ops += [op.to_wire() for op in iface_detach(self.model.platform_id, after, iface,
                                                        self.pool.backend(after.host) == "userspace")]
        if ops:
            self.pool.call(after.host, "apply", ops=ops)
        self._follow(vnode)

    def archive(self, name: str, target: str | os.PathLike[str]) -> int:
        """Distem's ``vfilesystem_image``: the vnode's root filesystem as a gzipped tarball at ``target`` (on
        this machine), usable as an image; its size in bytes. An overlay vnode (the default filesystem) is
        archived as it sees itself, so it must run; the others from their tree on the pnode."""
        vnode = self.model.vnode(name)
        if name in self.model.provisional:
            raise ValidationError("vnode", name, "it is not made on a pnode yet; start it first")
        running = self.model.status[name] in (RUNNING, FROZEN)
        if vnode.filesystem.mode == "overlay" and not running:
            raise ValidationError("vnode", name, "an overlay filesystem is put together when the vnode runs; start it")
        pnode = self.model.pnodes[vnode.host]
        root = writable_root(self.paths[pnode.name], vnode, self.images.sha(vnode.filesystem.image), pnode.btrfs)
        made = self.pool.call(vnode.host, "rootfs_archive", name=name, root=root)
        chunk = 8 << 20  # the channel carries it in pieces: a Debian tree is hundreds of MB
        try:
            with open(target, "wb") as out:
                for offset in range(0, made["size"], chunk):
                    out.write(self.pool.call(vnode.host, "file_read", path=made["path"], offset=offset, size=chunk))
        finally:
            self.pool.call(vnode.host, "file_remove", path=made["path"])
        return int(made["size"])

    def _make_room(self, pnodes: list[str]) -> None:
        """Room in each pnode's ARP table for what its vnodes may hold (NeighbourRoom), raised as it grows."""
        plans = {}
        room = neighbour_room(self.model.vnodes.values())
        for pnode in pnodes:
            entries, flood = room.get(pnode, (0, 0))
            if entries > max(SMALL, self.room.get(pnode, 0)):
                plans[pnode] = [NeighbourRoom.for_entries(entries, flood).to_wire()]
                self.room[pnode] = entries
        self.pool.apply(plans)

    def _redefined(self, vnode: VNode) -> list[dict[str, Any]]:
        """The container's config rewritten (nothing for a provisional vnode: made at its start)."""
        if vnode.name in self.model.provisional:
            return []
        pnode = self.model.pnodes[vnode.host]
        return [container_define(self.paths[pnode.name], vnode, self.model.vnetworks,
                                 self.images.sha(vnode.filesystem.image), pnode).to_wire()]

    def _follow(self, vnode: str) -> None:
        """What depends on a vnode's addresses follows a change of its interfaces."""
        self.matrix.refresh(vnode)
        self.routes.sync()
        self.write_etc()

    def write_etc(self) -> None:
        """Every pnode's /etc/hosts (and resolv.conf) for its vnodes, as the vnodes are now."""
        hosts = self.etc_hosts or hosts_text(self.model.vnodes.values())
        self.pool.apply({p: [op.to_wire() for op in etc_plan(self.paths[p], hosts)] for p in self.pool.sessions})

    def set_etc_hosts(self, data: Sequence[Sequence[str]] | None) -> None:
        """Distem's ``set_global_etchosts``: ``[[host, ip], ...]`` in every vnode's /etc/hosts; None: every
        vnode's name and addresses, kept current as vnodes come and go."""
        if data is not None:
            data = parse_pairs("set_global_etchosts", data, "[host, ip]")
            for host, ip in data:
                if not host or any(c.isspace() for c in host):
                    raise ValidationError("set_global_etchosts host", host, "expected a host name")
                parse_address("set_global_etchosts", ip)
        self.etc_hosts = None if data is None else given_hosts_text(data)
        self.write_etc()

    def set_arp_tables(self, data: Sequence[Sequence[str]] | None = None, arp_file: str | None = None) -> int:
        """Distem's ``set_global_arptable``: every running vnode's ARP table filled, for good (permanent
        entries), with its peers on each vnetwork, or with ``data`` ``[[ip, mac], ...]`` (or ``arp_file``'s
        "ip mac" lines) where the address is on one of its vnetworks. The number of entries written."""
        given = None
        if arp_file is not None:
            try:
                with open(arp_file) as f:
                    data = [line.split()[:2] for line in f if line.strip() and not line.startswith("#")]
            except OSError as exc:
                raise ValidationError("arp_file", arp_file, f"cannot be read: {exc.strerror}") from None
        if data is not None:
            given = [(parse_address("set_global_arptable", ip), parse_mac("set_global_arptable", mac))
                     for ip, mac in parse_pairs("set_global_arptable", data, "[ip, mac]")]
        plans: dict[str, list[dict[str, Any]]] = defaultdict(list)
        count = 0
        for name in self.running():
            for op in neighbour_ops(self.model.vnode(name), self.model.vnodes, given):
                plans[self.model.vnode(name).host].append(op.to_wire())
                count += len(op.entries)
        self.pool.apply(dict(plans), "Filling ARP tables")
        return count

    def realize(self, names: list[str]) -> None:
        """Make the provisional vnodes among ``names`` on the pnodes they are on now: all or none."""
        provisional = [n for n in names if n in self.model.provisional]
        before = [self.model.vnode(n) for n in provisional]
        try:
            self._make([self.model.settle(n) for n in provisional])
        except (ValidationError, AgentError):
            for vnode in before:
                self.model.unsettle(vnode)
            raise

    def _make(self, vnodes: list[VNode]) -> None:
        """Filesystems and containers on their pnodes, one batch per pnode; what failed is undone."""
        if not vnodes:
            return
        for i, vnode in enumerate(vnodes):
            vnodes[i] = replace(vnode, vio=self.resources.resolve_devices(
                vnode.host, vnode.vio, f"{vnode.name}.vfilesystem.disk_throttling"))
            self.model.update_vnode(vnodes[i])
        groups: dict[str, list[VNode]] = defaultdict(list)
        for vnode in vnodes:
            groups[vnode.host].append(vnode)
        self.images.install({v.filesystem.image for v in vnodes}, list(groups))
        shas = {v.filesystem.image: self.images.sha(v.filesystem.image) for v in vnodes}
        if self.keys is None:
            self.keys = platform_keys(self.model.platform_id)
        trusted = [k.public for k in [self.keys.user if self.keys else None,
                                      *(v.ssh_key for v in self.model.vnodes.values())] if k and k.public]
        plans = {pnode: [op.to_wire() for op in vnodes_plan(self.paths[pnode], group, self.model.vnetworks, shas,
                                                          self.model.pnodes[pnode], self.keys, trusted)]
                 for pnode, group in groups.items()}
        try:
            self.pool.apply(plans, "Creating vnodes")
        except AgentError:
            # Each pnode rolled its own batch back; the pnodes that succeeded undo theirs.
            for pnode, group in groups.items():
                try:
                    self.pool.undo([vnode_owner(v.name) for v in group], [pnode])
                except AgentError as exc:
                    log.warning("rollback on %s: %s", pnode, exc)
            raise

    def _check_btrfs(self, request: VNodeRequest) -> None:
        pnode = request.host or next(iter(self.model.pnodes))
        where = self.model.pnodes.get(pnode)
        if where is not None and where.btrfs is None:
            raise ValidationError(f"{request.name}.vfilesystem.cow", "btrfs",
                                  "this platform has no btrfs location; create it with "
                                  "Platform(btrfs='loop:4G') or Platform(btrfs='/a/dir/on/btrfs')")
        if where is not None and not where.btrfs.startswith("loop:") and not os.path.isdir(where.btrfs):
            raise ValidationError("btrfs", where.btrfs, "expected an existing directory on a btrfs filesystem")

    def remove(self, names: list[str]) -> None:
        made = [n for n in names if n not in self.model.provisional]  # provisional ones are in the model only
        for name in names:
            self.model.vnode(name)
        groups = self.pool.by_host(self.model, made)
        results = self.pool.on_all({p: ("undo_owner", {"owners": [vnode_owner(n) for n in group]})
                                    for p, group in groups.items()}, "Removing vnodes", len(names))
        for name in names:
            self.model.remove_vnode(name)
        self.write_etc()
        self.routes.forget(names)
        self.routes.sync()  # the others drop their routes through removed gateways
        self.matrix.forget(names)  # the others stop delaying them
        for pnode, failures in results.items():
            if failures:
                raise AgentError(pnode, "remove", "; ".join(failures))

    # -- running -------------------------------------------------------------------------------
    def lifecycle(self, action: str, names: list[str]) -> None:
        """``action`` (start, stop, freeze, unfreeze) on each vnode, in parallel over pnodes."""
        for name in names:
            self.model.vnode(name)
        if action == "start":
            self.realize(names)
        groups = self.pool.by_host(self.model, names)
        if action == "start":
            self._make_room(list(groups))
        calls = {}
        for pnode, group in groups.items():  # at start: each vnode's shaping and routing, once it runs
            after = {"shaping": self.routes.at_start(group, self.links.shaping(group, fresh=True))} \
                if action == "start" else {}
            calls[pnode] = (action, {"names": group, **after})
        # What the pnodes that answered did is recorded, even when another pnode failed or was lost.
        results, failed = self.pool.on_each(calls, LABEL[action], len(names))
        done = []
        for pnode, per_pnode in results.items():
            for name, result in per_pnode.items():
                if result["ok"]:
                    self.model.set_status(name, AFTER[action])
                    done.append(name)
                else:
                    failed.append(AgentError.from_failure(pnode, result["failure"], action))
        self.routes.moved(action, done)
        if failed:
            first = failed[0]
            raise AgentError(first.pnode, action, "; ".join(f"{f.target}: {f.message}" if f.target else f.message
                                                          for f in failed),
                             errno=first.errno, target=first.target)

    def execute(self, names: list[str], command: Argv,
                timeout: float | None = None) -> dict[str, tuple[int, str, str, bool]]:
        """Each vnode's (status, stdout, stderr, killed at the timeout), in the order of ``names``."""
        for name in names:
            if self.model.vnode(name) and self.model.status[name] != RUNNING:
                raise ValidationError("vnode", name, f"it is {self.model.status[name]}; start it first")
        argv = as_argv(command)
        groups = self.pool.by_host(self.model, names)
        results = self.pool.on_all({p: ("execute", {"names": g, "argv": argv, "timeout": timeout})
                                    for p, g in groups.items()})
        out = {}
        for per_pnode in results.values():
            for name, result in per_pnode.items():
                if not result["ok"]:
                    raise AgentError.from_failure(self.model.vnode(name).host, result["failure"], "execute")
                out[name] = tuple(result["value"])
        return {n: out[n] for n in names}

    def running(self) -> list[str]:
        return [n for n, s in self.model.status.items() if s == RUNNING]
