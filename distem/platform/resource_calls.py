"""CPU, memory and disk IO limits, live: Distem's vcpu_*, vmem_* and vfilesystem_* calls.

A change rewrites the container's config (for its next boot) and, when it
runs, writes its cgroup directly: no restart. Each limit goes through the
cgroup hierarchy its pnode has the controller on; the vnode keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import AgentError, ValidationError
from ..model import FROZEN, RUNNING, VNode
from ..model.links import parse_limits
from ..model.resources import VIo, parse_vcpu, parse_vcpu_desc, parse_vio, parse_vmem
from ..plan.cgroups import live_writes
from ..plan.deploy import container_define

if TYPE_CHECKING:
    from .platform import Platform

    _Base = Platform
else:
    _Base = object


class ResourceCalls(_Base):
    def _resolve_devices(self, host: str, vio: VIo | None, field: str) -> VIo | None:
        """Each throttled device's major:minor on its pnode; a missing device or a partition is refused."""
        if vio is None:
            return None
        found = self.sessions[host].call("block_devices", paths=[limit.device for limit in vio.limits])
        limits = []
        for i, limit in enumerate(vio.limits):
            device = found[limit.device]
            if "error" in device:
                raise ValidationError(f"{field}.limits[{i}].device", limit.device, f"on pnode {host}: {device['error']}")
            limits.append(replace(limit, devnum=device["devnum"]))
        return replace(vio, limits=tuple(limits))

    def _apply_resources(self, old: VNode, new: VNode) -> None:
        pnode = self.model.pnodes[new.host]
        sha = self._image_sha(new.filesystem.image)
        ops = [container_define(self._paths(pnode.name), new, self.model.vnetworks, sha, pnode)]
        if self.model.status[new.name] in (RUNNING, FROZEN):
            ops += live_writes(self.id, old, new, pnode.cgroups, pnode.cores, pnode.cgroup_parent)
        self.model.update_vnode(new)
        try:
            self.sessions[pnode.name].call("apply", ops=[op.to_wire() for op in ops])
        except AgentError:
            self.model.update_vnode(old)
            raise

    def vnode_update(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
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
            new = replace(new, vcpu=vcpu, cpuset=self.model.assign_cores(pnode.name, vcpu, vnode) if vcpu else ())
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
            self._apply_resources(old, new)
        for entry in ifaces:
            self.viface_update(vnode, entry["name"], {k: v for k, v in entry.items() if k != "name"})
        return self.vnode_info(vnode)

    # -- CPU -------------------------------------------------------------------------
    def vcpu_create(self, vnode: str, val: float, unit: str = "mhz", corenb: int = 1,
                    exclusive: bool = False) -> dict[str, Any]:
        """Pin ``vnode`` to ``corenb`` cores running at ``val`` ('ratio' of full speed, or 'mhz').

        Raises:
            ValidationError: bad values, MHz without cpufreq on the pnode, not enough free cores.
        """
        old = self.model.vnode(vnode)
        pnode = self.model.pnodes[old.host]
        vcpu = parse_vcpu(f"{vnode}.vcpu", val, unit, corenb, exclusive, pnode.max_mhz, pnode.name)
        new = replace(old, vcpu=vcpu, cpuset=self.model.assign_cores(old.host, vcpu, vnode))
        self._apply_resources(old, new)
        return self.vcpu_info(vnode)

    def vcpu_update(self, vnode: str, val: float, unit: str = "mhz") -> dict[str, Any]:
        """Change the speed of ``vnode``'s cores, live; the cores stay the same."""
        old = self.model.vnode(vnode)
        if old.vcpu is None:
            return self.vcpu_create(vnode, val, unit)
        pnode = self.model.pnodes[old.host]
        vcpu = parse_vcpu(f"{vnode}.vcpu", val, unit, old.vcpu.cores, old.vcpu.exclusive, pnode.max_mhz, pnode.name)
        self.model.assign_cores(old.host, vcpu, vnode)  # the pnode still has the controllers it needs
        self._apply_resources(old, replace(old, vcpu=vcpu))
        return self.vcpu_info(vnode)

    def vcpu_remove(self, vnode: str) -> None:
        """Back to every core of the pnode at full speed."""
        old = self.model.vnode(vnode)
        self._apply_resources(old, replace(old, vcpu=None, cpuset=()))

    def vcpu_info(self, vnode: str) -> dict[str, Any]:
        node = self.model.vnode(vnode)
        if node.vcpu is None:
            return {}
        return {"corenb": node.vcpu.cores, "val": node.vcpu.ratio, "unit": "ratio", "cores": list(node.cpuset),
                "exclusive": node.vcpu.exclusive}

    # -- memory ----------------------------------------------------------------------
    def vmem_create(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Limit ``vnode``'s memory: {'hierarchy': 'v1'|'v2', 'mem'|'hard_limit', 'soft_limit', 'swap'} (MB)."""
        old = self.model.vnode(vnode)
        pnode = self.model.pnodes[old.host]
        self._apply_resources(old, replace(old, vmem=parse_vmem(f"{vnode}.vmem", desc, pnode.cgroups, pnode.name)))
        return self.vmem_info(vnode)

    def vmem_update(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change some memory limits, live; keys left out keep their value, 'max' cancels a limit."""
        old = self.model.vnode(vnode)
        pnode = self.model.pnodes[old.host]
        vmem = parse_vmem(f"{vnode}.vmem", desc, pnode.cgroups, pnode.name, base=old.vmem)
        self._apply_resources(old, replace(old, vmem=vmem))
        return self.vmem_info(vnode)

    def vmem_remove(self, vnode: str) -> None:
        """No memory limit any more."""
        self.vmem_update(vnode, {"mem": "max", "soft_limit": "max", "swap": "max"})

    def vmem_info(self, vnode: str) -> dict[str, Any]:
        vmem = self.model.vnode(vnode).vmem
        return vmem.to_distem() if vmem else {}

    # -- disk IO ---------------------------------------------------------------------
    def vfilesystem_update(self, vnode: str, desc: Mapping[str, Any]) -> dict[str, Any]:
        """Change disk throttling, live: {'disk_throttling': {'limits': [{'device', 'read_limit', ...}]}}.

        Named devices change (keys left out keep their value, 'max' removes a limit), others stay.
        A device not throttled at the vnode's start becomes visible inside it at its next start.
        """
        old = self.model.vnode(vnode)
        self._apply_resources(old, replace(old, vio=self._updated_vio(old, desc)))
        return self.vfilesystem_info(vnode)

    def _updated_vio(self, old: VNode, desc: object) -> VIo | None:
        pnode = self.model.pnodes[old.host]
        field = f"{old.name}.vfilesystem"
        if not isinstance(desc, Mapping) or set(desc) - {"disk_throttling"}:
            raise ValidationError(field, desc, "only 'disk_throttling' can change on a created vnode")
        vio = parse_vio(f"{field}.disk_throttling", desc.get("disk_throttling"), pnode.cgroups, pnode.name,
                        base=old.vio)
        return self._resolve_devices(pnode.name, vio, f"{field}.disk_throttling")

    def vfilesystem_info(self, vnode: str) -> dict[str, Any]:
        node = self.model.vnode(vnode)
        fs = node.filesystem
        info: dict[str, Any] = {"image": fs.image, "mode": fs.mode, "shared": fs.mode == "shared",
                                "cow": fs.mode in ("overlay", "btrfs")}
        if node.vio:
            info["disk_throttling"] = node.vio.to_distem()
        return info
