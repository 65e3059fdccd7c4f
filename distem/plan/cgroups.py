"""A vnode's CPU, memory and disk IO limits as cgroup settings (pure): LXC config lines for its
boot, writes for live changes. Each setting goes through the hierarchy the pnode has its
controller on (``cgroups``: controller -> 1 or 2).

              v1                                             v2
    cpu       cpuset.cpus; cpu.cfs_period_us, cfs_quota_us    cpuset.cpus; cpu.max "QUOTA PERIOD"
    memory    memory.limit_in_bytes, memsw (hard + swap),    memory.max, memory.high, memory.swap.max
              memory.soft_limit_in_bytes
    io        blkio.throttle.{read,write}_{bps,iops}_device  io.max "MAJ:MIN rbps= wbps= riops= wiops="
"""

from __future__ import annotations

from collections.abc import Mapping

from ..model.entities import VNode
from ..model.names import vnode_cgroup
from ..model.resources import CFS_PERIOD_US, VIo, VMem
from ..wire import vnode_owner
from .ops import CgroupWrite, Plan

Setting = tuple[int, str, str, str]  # (hierarchy, controller, file, value)


def cpu_settings(vnode: VNode, cgroups: Mapping[str, int], all_cores: int) -> list[Setting]:
    """Without a vcpu: every core at full speed."""
    cpus = ",".join(map(str, vnode.cpuset)) if vnode.vcpu else f"0-{all_cores - 1}"
    quota = vnode.vcpu.quota_us if vnode.vcpu else None
    out: list[Setting] = []
    if "cpuset" in cgroups:
        out.append((cgroups["cpuset"], "cpuset", "cpuset.cpus", cpus))
    if cgroups.get("cpu") == 2:
        out.append((2, "cpu", "cpu.max", f"{quota or 'max'} {CFS_PERIOD_US}"))
    elif cgroups.get("cpu") == 1:  # the period first: v1 checks a quota against the current period
        out += [(1, "cpu", "cpu.cfs_period_us", str(CFS_PERIOD_US)), (1, "cpu", "cpu.cfs_quota_us", str(quota or -1))]
    return out


def memory_settings(vmem: VMem, reset_swap: bool = False) -> list[Setting]:
    """v1 requires memsw >= limit at every step: ``reset_swap`` lifts memsw first (live changes)."""
    if vmem.hierarchy == 2:
        return [(2, "memory", "memory.max", str(vmem.hard or "max")),
                (2, "memory", "memory.high", str(vmem.soft or "max")),
                *([(2, "memory", "memory.swap.max", str("max" if vmem.swap is None else vmem.swap))]
                  if vmem.swap is not None or reset_swap else [])]
    out: list[Setting] = [(1, "memory", "memory.memsw.limit_in_bytes", "-1")] if reset_swap else []
    out += [(1, "memory", "memory.limit_in_bytes", str(vmem.hard or -1)),
            (1, "memory", "memory.soft_limit_in_bytes", str(vmem.soft or -1))]
    if vmem.swap is not None and vmem.hard is not None:  # memsw exists only with swapaccount=1: touch it if asked
        out.append((1, "memory", "memory.memsw.limit_in_bytes", str(vmem.hard + vmem.swap)))
    return out


def io_settings(vio: VIo) -> list[Setting]:
    out: list[Setting] = []
    for limit in vio.limits:
        if vio.hierarchy == 2:
            values = " ".join(f"{key}={getattr(limit, attr) or 'max'}" for key, attr in
                              (("rbps", "read_bps"), ("wbps", "write_bps"), ("riops", "read_iops"),
                               ("wiops", "write_iops")))
            out.append((2, "io", "io.max", f"{limit.devnum} {values}"))
        else:  # 0 removes a v1 throttle rule
            out += [(1, "blkio", f"blkio.throttle.{attr}_device", f"{limit.devnum} {getattr(limit, attr) or 0}")
                    for attr in ("read_bps", "write_bps", "read_iops", "write_iops")]
    return out


def lxc_lines(vnode: VNode, cgroups: Mapping[str, int], all_cores: int) -> list[str]:
    """Limits LXC applies at start (``lxc.cgroup.*`` on v1, ``lxc.cgroup2.*`` on v2), and the
    throttled devices made visible inside the container."""
    settings = cpu_settings(vnode, cgroups, all_cores) if vnode.vcpu else []
    settings += memory_settings(vnode.vmem) if vnode.vmem else []
    settings += io_settings(vnode.vio) if vnode.vio else []
    lines = [f"{'lxc.cgroup2' if v == 2 else 'lxc.cgroup'}.{file} = {value}" for v, _, file, value in settings]
    # Our containers have no device rules (no common.conf), so a bind-mounted node is usable.
    lines += [f"lxc.mount.entry = {limit.device} {limit.device.lstrip('/')} none bind,create=file 0 0"
              for limit in (vnode.vio.limits if vnode.vio else ())]
    return lines


def live_writes(platform_id: str, old: VNode, new: VNode, cgroups: Mapping[str, int], all_cores: int,
                cgroup_parent: str = "") -> Plan:
    """Writes that take a running vnode from ``old``'s limits to ``new``'s (on a pnode whose
    cgroups live under ``cgroup_parent``)."""
    settings: list[Setting] = []
    if (old.vcpu, old.cpuset) != (new.vcpu, new.cpuset):
        settings += cpu_settings(new, cgroups, all_cores)
    if old.vmem != new.vmem and new.vmem:
        settings += memory_settings(new.vmem, reset_swap=bool(old.vmem and old.vmem.swap is not None))
    if old.vio != new.vio and new.vio:
        settings += io_settings(new.vio)
    path = vnode_cgroup(platform_id, new.name, cgroup_parent)
    return tuple(CgroupWrite(owner=vnode_owner(new.name), version=v, controller=c, path=path, file=f, value=value)
                 for v, c, f, value in settings)
