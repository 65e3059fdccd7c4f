"""What a vnode asks of a pnode and of the links: cores, memory, and the traffic it sends on each vnetwork.

    cores      its vcpu's ``corenb``; 1 without a vcpu (it still runs somewhere)
    memory     its vmem hard limit in bytes; 0 without one
    outputs    per vnetwork, the sum of the output rates (bit/s) of its interfaces on it;
               0 for interfaces without a rate (no traffic is accounted for them)

Its bandwidth, as Distem counts it, is the sum of its output rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Interface
from typing import Any

from ...errors import ValidationError
from ..descriptions import VNodeRequest, parse_vnode
from ..entities import VNetwork, VNode

__all__ = ["Demand", "demand_of_request", "demand_of_vnode", "request_for_placement"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Demand:
    name: str
    cores: int = 1
    memory: int = 0
    outputs: tuple[tuple[str, int], ...] = ()  # (vnetwork, bit/s), one entry per vnetwork, in name order

    def __post_init__(self) -> None:
        if isinstance(self.cores, bool) or not isinstance(self.cores, int) or self.cores < 0:
            raise ValidationError(f"{self.name}.cores", self.cores, "expected a whole number of cores (0 or more)")
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory < 0:
            raise ValidationError(f"{self.name}.memory", self.memory, "expected a number of bytes (0 or more)")
        for vnetwork, rate in self.outputs:
            if isinstance(rate, bool) or not isinstance(rate, int) or rate < 0:
                raise ValidationError(f"{self.name}.{vnetwork}.output", rate, "expected a rate in bit/s (0 or more)")

    @property
    def bandwidth(self) -> int:
        """The sum of its output rates, in bit/s."""
        return sum(rate for _, rate in self.outputs)

    @property
    def vnetworks(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.outputs)


def _outputs(pairs: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    total: dict[str, int] = {}
    for vnetwork, rate in pairs:
        total[vnetwork] = total.get(vnetwork, 0) + rate
    return tuple(sorted(total.items()))


def _vnetwork_of(name: str | None, address: IPv4Interface | None, vnetworks: Mapping[str, VNetwork]) -> str:
    """The vnetwork an interface joins; by its address when it names none (its network, if no vnetwork holds it)."""
    if name is not None:
        return name
    assert address is not None  # parse_iface requires one or the other
    for vnet in vnetworks.values():
        if address.ip in vnet.cidr:
            return vnet.name
    return str(address.network)


def demand_of_request(request: VNodeRequest, vnetworks: Mapping[str, VNetwork] | None = None) -> Demand:
    """The demand of a described vnode (``vnetworks`` resolves interfaces given by address only)."""
    return Demand(name=request.name, cores=request.vcpu.cores if request.vcpu else 1,
                  memory=(request.vmem.hard or 0) if request.vmem else 0,
                  outputs=_outputs((_vnetwork_of(i.vnetwork, i.address, vnetworks or {}),
                                    (i.output.rate_bps or 0) if i.output else 0) for i in request.ifaces))


def demand_of_vnode(vnode: VNode) -> Demand:
    """The demand of a created vnode."""
    return Demand(name=vnode.name, cores=vnode.vcpu.cores if vnode.vcpu else 1,
                  memory=(vnode.vmem.hard or 0) if vnode.vmem else 0,
                  outputs=_outputs((i.vnetwork, (i.output.rate_bps or 0) if i.output else 0) for i in vnode.ifaces))


def request_for_placement(name: str, desc: Mapping[str, Any]) -> VNodeRequest:
    """A description checked as ``vnode_create`` checks it, except that its image may be left for later:
    where a vnode goes does not depend on it."""
    fs = desc.get("vfilesystem")
    if fs is None or (isinstance(fs, Mapping) and "image" not in fs):
        desc = {**desc, "vfilesystem": {**(fs or {}), "image": "(chosen later)"}}
    return parse_vnode(name, desc)
