"""CPU, memory and disk IO limits, live: Distem's vcpu_*, vmem_* and vfilesystem_* calls.

A change rewrites the container's config (for its next boot) and, when it
runs, writes its cgroup directly: no restart. Each limit goes through the
cgroup hierarchy its pnode has the controller on; the vnode keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..errors import AgentError, ValidationError
from ..model import FROZEN, RUNNING, PlatformModel, VNode
from ..model.links import parse_limits
from ..model.resources import VCpu, VIo, parse_vcpu, parse_vcpu_desc, parse_vio, parse_vmem
from ..plan import PnodePaths
from ..plan.cgroups import live_writes
from ..plan.deploy import container_define
from .image_cache import ImageCache
from .links import Links
from .pool import PnodePool


class Resources:
    """No state of its own: the limits are the model's vnodes'."""

    def __init__(self, model: PlatformModel, pool: PnodePool, paths: dict[str, PnodePaths], images: ImageCache,
                 links: Links) -> None:
        self.model, self.pool, self.paths, self.images, self.links = model, pool, paths, images, links

    def resolve_devices(self, host: str, vio: VIo | None, field: str) -> VIo | None:
        """Each throttled device's major:minor on its pnode; a missing device or a partition is refused."""
        if vio is None:
            return None
        found = self.pool.call(host, "block_devices", paths=[limit.device for limit in vio.limits])
        limits = []
        for i, limit in enumerate(vio.limits):
            device = found[limit.device]
            if "error" in device:
                raise ValidationError(f"{field}.limits[{i}].device", limit.device, f"on pnode {host}: {device['error']}")
            limits.append(replace(limit, devnum=device["devnum"]))
        return replace(vio, limits=tuple(limits))

    def _apply(self, old: VNode, new: VNode) -> None:
        if new.name in self.model.provisional:  # not made on a pnode yet: its start makes it with these
            self.model.update_vnode(new)
            return
        pnode = self.model.pnodes[new.host]
        sha = self.images.sha(new.filesystem.image)
        ops = [container_define(self.paths[pnode.name], new, self.model.vnetworks, sha, pnode)]
        if self.model.status[new.name] in (RUNNING, FROZEN):
            ops += live_writes(self.model.platform_id, old, new, pnode.cgroups, pnode.cores, pnode.cgroup_parent)
        self.model.update_vnode(new)
        try:
            self.pool.call(pnode.name, "apply", ops=[op.to_wire() for op in ops])
        except AgentError:
            self.model.update_vnode(old)
            raise
    def vnode_update(self, vnode: str, desc: Mapping[str, Any]) -> None:
        """Distem's vnode_update: change the 'vcpu', 'vmem', 'vfilesystem' (disk_throttling) and
        'vifaces' (input/output limits, by name) of a created vnode, live where it runs.
        Everything is checked before anything changes."""
        allowed = {"vcpu", "vmem", "vfilesystem", "vifaces"}
        if not isinstance(desc, Mapping) or set(desc) - allowed:
            raise ValidationError(f"{vnode} update", desc if not isinstance(desc, Mapping) else
                                  sorted(set(desc) - allowed)[0], f"allowed keys: {', '.join(sorted(allowed))}")
        old = self.model.vnode(vnode)
        pnode = self.model.pnodes[old.host]
        new = old
        if "vcpu" in desc:
            vcpu = parse_vcpu_desc(f"{vnode}.vcpu", desc["vcpu"], pnode.max_mhz, pnode.name)
            new = replace(new, vcpu=vcpu, cpuset=self._cores(old, vcpu) if vcpu else ())
        if "vmem" in desc:
            new = replace(new, vmem=parse_vmem(f"{vnode}.vmem", desc["vmem"], pnode.cgroups, pnode.name, old.vmem))
        if "vfilesystem" in desc:
            new = replace(new, vio=self._updated_vio(old, desc["vfilesystem"]))
        ifaces = desc.get("vifaces") or []
        for i, entry in enumerate(ifaces):  # the same checks viface_update makes, before any change
            if not isinstance(entry, Mapping) or set(entry) - {"name", "input", "output"}:
                raise ValidationError(f"{vnode}.vifaces[{i}]", entry, "expected {'name', 'input', 'output'}")
            iface = old.iface(entry.get("name"))
            for direction in ("input", "output"):
                if direction in entry:
                    parse_limits(f"{vnode}.{iface.name}.{direction}", entry[direction], getattr(iface, direction))
        if new != old:
            self._apply(old, new)
        for entry in ifaces:
            self.links.viface_update(vnode, entry["name"], {k: v for k, v in entry.items() if k != "name"})

    # -- CPU -------------------------------------------------------------------------
    def vcpu_create(self, vnode: str, val: float, unit: str = "mhz", corenb: int = 1,
                    exclusive: bool = False) -> None:
        """Pin ``vnode`` to ``corenb`` cores running at ``val`` ('ratio' of full speed, or 'mhz').

        Raises:
            ValidationError: bad values, MHz without cpufreq on the pnode, not enough free cores.
        """
        old = self.model.vnode(vnode)
        pnode = self.model.pnodes[old.host]
        vcpu = parse_vcpu(f"{vnode}.vcpu", val, unit, corenb, exclusive, pnode.max_mhz, pnode.name)
        self._apply(old, replace(old, vcpu=vcpu, cpuset=self._cores(old, vcpu)))

    def vcpu_update(self, vnode: str, val: float, unit: str = "mhz") -> None:
        """Change the speed of ``vnode``'s cores, live; the cores stay the same."""
        old = self.model.vnode(vnode)
        if old.vcpu is None:
            return self.vcpu_create(vnode, val, unit)
        pnode = self.model.pnodes[old.host]
        vcpu = parse_vcpu(f"{vnode}.vcpu", val, unit, old.vcpu.cores, old.vcpu.exclusive, pnode.max_mhz, pnode.name)
        self._cores(old, vcpu)  # the pnode still has the controllers it needs
        self._apply(old, replace(old, vcpu=vcpu))

    def _cores(self, vnode: VNode, vcpu: VCpu) -> tuple[int, ...]:
        """Its cores on its pnode; a provisional vnode's are chosen at its start, on the pnode it is then on."""
        return self.model.cores_for(vnode.host, vcpu, vnode.name, vnode.name in self.model.provisional)

    def vcpu_remove(self, vnode: str) -> None:
        """Back to every core of the pnode at full speed."""
        old = self.model.vnode(vnode)
        self._apply(old, replace(old, vcpu=None, cpuset=()))

    # -- memory ----------------------------------------------------------------------
    def vmem_create(self, vnode: str, desc: Mapping[str, Any]) -> None:
        """Limit ``vnode``'s memory: {'hierarchy': 'v1'|'v2', 'mem'|'hard_limit', 'soft_limit', 'swap'} (MB)."""
        old = self.model.vnode(vnode)
        pnode = self.model.pnodes[old.host]
        self._apply(old, replace(old, vmem=parse_vmem(f"{vnode}.vmem", desc, pnode.cgroups, pnode.name)))

    def vmem_update(self, vnode: str, desc: Mapping[str, Any]) -> None:
        """Change some memory limits, live; keys left out keep their value, 'max' cancels a limit."""
        old = self.model.vnode(vnode)
        pnode = self.model.pnodes[old.host]
        vmem = parse_vmem(f"{vnode}.vmem", desc, pnode.cgroups, pnode.name, base=old.vmem)
        self._apply(old, replace(old, vmem=vmem))

    def vmem_remove(self, vnode: str) -> None:
        """No memory limit any more."""
        self.vmem_update(vnode, {"mem": "max", "soft_limit": "max", "swap": "max"})

    # -- disk IO ---------------------------------------------------------------------
    def vfilesystem_update(self, vnode: str, desc: Mapping[str, Any]) -> None:
        """Change disk throttling, live: {'disk_throttling': {'limits': [{'device', 'read_limit', ...}]}}.

        Named devices change (keys left out keep their value, 'max' removes a limit), others stay.
        A device not throttled at the vnode's start becomes visible inside it at its next start.
        """
        old = self.model.vnode(vnode)
        self._apply(old, replace(old, vio=self._updated_vio(old, desc)))

    def _updated_vio(self, old: VNode, desc: object) -> VIo | None:
        pnode = self.model.pnodes[old.host]
        field = f"{old.name}.vfilesystem"
        if not isinstance(desc, Mapping) or set(desc) - {"disk_throttling"}:
            raise ValidationError(field, desc, "only 'disk_throttling' can change on a created vnode")
        vio = parse_vio(f"{field}.disk_throttling", desc.get("disk_throttling"), pnode.cgroups, pnode.name,
                        base=old.vio)
        return self.resolve_devices(pnode.name, vio, f"{field}.disk_throttling")
