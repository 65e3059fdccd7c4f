"""CPU limits, live: Distem's vcpu calls (memory and disk IO will join them here).

A change rewrites the container's config (for its next boot) and, when it
runs, writes its cgroup directly: no restart.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import AgentError
from ..model import FROZEN, RUNNING, VNode
from ..model.resources import parse_vcpu
from ..plan.cgroups import cpu_writes
from ..plan.deploy import container_define

if TYPE_CHECKING:
    from .platform import Platform

    _Base = Platform
else:
    _Base = object


class ResourceCalls(_Base):
    def _cgroup_version(self, pnode: str) -> int:
        return int(self.sessions[pnode].facts["cgroup_version"])

    def _apply_resources(self, old: VNode, new: VNode) -> None:
        pnode = new.host
        sha = self._image_sha(new.filesystem.image)
        version = self._cgroup_version(pnode)
        ops = [container_define(self._paths(pnode), new, self.model.vnetworks, sha, self.model.pnodes[pnode].btrfs,
                                version)]
        if self.model.status[new.name] in (RUNNING, FROZEN):
            ops += cpu_writes(self.id, new, version, self.model.pnodes[pnode].cores)
        self.model.update_vnode(new)
        try:
            self.sessions[pnode].call("apply", ops=[op.to_wire() for op in ops])
        except AgentError:
            self.model.update_vnode(old)
            raise

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
