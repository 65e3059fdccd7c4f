"""A vnode's CPU limits as cgroup settings (pure): LXC config lines for boot, writes for live changes.

    v1: cpuset.cpus in the cpuset hierarchy; cpu.cfs_period_us / cpu.cfs_quota_us in the cpu one
    v2: cpuset.cpus and cpu.max ("QUOTA PERIOD" or "max PERIOD") in the unified hierarchy
"""

from __future__ import annotations

from ..model.entities import VNode
from ..model.names import cgroup_root
from ..model.resources import CFS_PERIOD_US
from .ops import CgroupWrite, Op, Plan


def cpu_settings(vnode: VNode, version: int) -> list[tuple[str, str, str]]:
    """(controller, file, value) triples; no vcpu: full speed on every core."""
    cpus = ",".join(map(str, vnode.cpuset))
    quota = vnode.vcpu.quota_us if vnode.vcpu else None
    if version == 2:
        return [("cpuset", "cpuset.cpus", cpus), ("cpu", "cpu.max", f"{quota or 'max'} {CFS_PERIOD_US}")]
    return [("cpuset", "cpuset.cpus", cpus), ("cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)),
            ("cpu", "cpu.cfs_quota_us", str(quota or -1))]


def lxc_cpu_lines(vnode: VNode, version: int) -> list[str]:
    """Limits LXC applies at start (``lxc.cgroup.*`` on v1, ``lxc.cgroup2.*`` on v2)."""
    if vnode.vcpu is None:
        return []
    prefix = "lxc.cgroup2" if version == 2 else "lxc.cgroup"
    return [f"{prefix}.{file} = {value}" for _, file, value in cpu_settings(vnode, version)]


def cpu_writes(platform_id: str, vnode: VNode, version: int, all_cores: int) -> Plan:
    """Live writes; without a vcpu, back to every core at full speed."""
    path = f"{cgroup_root(platform_id)}/vnode-{vnode.name}"
    settings = cpu_settings(vnode, version)
    if vnode.vcpu is None:
        settings = [(c, f, f"0-{all_cores - 1}" if f == "cpuset.cpus" else v) for c, f, v in settings]
    # In order: the cores, the period, then the quota (v1 checks a quota against the current period).
    return tuple(CgroupWrite(owner=f"vnode:{vnode.name}", version=version, controller=c, path=path, file=f, value=v)
                 for c, f, v in settings)
