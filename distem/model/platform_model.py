"""The desired state of one platform, and the rules that keep it consistent.

Every check happens here, before a pnode is touched: unknown vnetwork,
duplicate name, exhausted address range, an address outside its vnetwork, an
unknown pnode. Indices (which name the Linux objects) are handed out once and
never reused within a platform.
"""

from __future__ import annotations

import copy

from collections.abc import Iterable, Mapping
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network
from typing import Any

from ..errors import AlreadyExistsError, NotFoundError, ValidationError
from .descriptions import IfaceRequest, VNodeRequest
from .entities import INIT, NetworkType, PNode, VIface, VNetwork, VNode
from .resources import VCpu, describe_cgroups
from .names import check_cgroup_parent, check_name, check_platform_id, mac_address
from .routes import RoutingState, VRoute, VRoutes, check_vroute, choose, refresh, routing_state, with_complete

# Where vnetworks created without a CIDR get a /24 (Distem's examples pass '').
AUTO_POOL = IPv4Network("10.144.0.0/16")


class PlatformModel:
    def __init__(self, platform_id: str, pnodes: list[PNode]) -> None:
        self.platform_id = check_platform_id(platform_id)
        if not pnodes:
            raise ValidationError("pnodes", pnodes, "a platform needs at least one pnode")
        self.pnodes: dict[str, PNode] = {}
        for pnode in pnodes:
            if pnode.name in self.pnodes:
                raise AlreadyExistsError("pnode", pnode.name)
            check_cgroup_parent(f"pnode {pnode.name}.cgroup_parent", pnode.cgroup_parent)
            self.pnodes[pnode.name] = pnode
        self.vnetworks: dict[str, VNetwork] = {}
        self.vnodes: dict[str, VNode] = {}
        self.status: dict[str, str] = {}
        # Created without a 'host' on several pnodes, not yet made on any: placement may still move them
        # (run_alevin after vnode_create, as Distem's scripts do); they are made where they are at start.
        self.provisional: set[str] = set()
        self.latencies: dict[tuple[str, str], int] = {}  # the latency matrix's non-zero cells, us (matrix.py)
        self.vroutes: VRoutes = {}  # routes between vnetworks (routes.py)
        self.partition: tuple[tuple[str, ...], ...] = ()  # groups of vnodes that cannot reach each other
        self.unplugged: frozenset[tuple[str, str]] = frozenset()  # (vnode, iface) whose link is down
        self._next_vnetwork = 0
        self._next_vnode = 0
        self._lowest_free: dict[str, int] = {}  # per vnetwork: every address below this one is taken

    # -- vnetworks ---------------------------------------------------------
    def vnetwork(self, name: str) -> VNetwork:
        try:
            return self.vnetworks[name]
        except KeyError:
            raise NotFoundError("vnetwork", name, list(self.vnetworks)) from None

    def add_vnetwork(
        self, name: str, cidr: IPv4Network | None, network_type: NetworkType = "classical",
        root_interface: str | None = None, mtu: int | None = None,
    ) -> VNetwork:
        """``mtu``: the vnodes' MTU when it is less than the physical one (VXLAN across pnodes)."""
        check_name("vnetwork name", name)
        if name in self.vnetworks:
            raise AlreadyExistsError("vnetwork", name)
        cidr = cidr or self._free_cidr()
        for other in self.vnetworks.values():
            if other.cidr.overlaps(cidr):
                raise ValidationError(f"vnetwork {name!r} cidr", str(cidr), f"it overlaps vnetwork {other.name!r} ({other.cidr})")
        # Across pnodes a physical interface joins one bridge only: classical vnetworks on it share one.
        shared = next((v.index for v in self.vnetworks.values() if len(self.pnodes) > 1 and network_type == "classical"
                       and v.network_type == "classical" and v.root_interface == root_interface
                       and v.shares_bridge_of is None), None)
        vnet = VNetwork(name=name, index=self._next_vnetwork, cidr=cidr, network_type=network_type,
                        root_interface=root_interface, mtu=mtu, shares_bridge_of=shared)
        self._next_vnetwork += 1
        self.vnetworks[name] = vnet
        return vnet

    def remove_vnetwork(self, name: str) -> VNetwork:
        vnet = self.vnetwork(name)
        users = sorted(n.name for n in self.vnodes.values() if any(i.vnetwork == name for i in n.ifaces))
        if users:
            raise ValidationError("vnetwork", name, f"still used by vnodes {', '.join(users)}; remove them first")
        sharing = sorted(v.name for v in self.vnetworks.values() if v.shares_bridge_of == vnet.index)
        if sharing:
            raise ValidationError("vnetwork", name, f"vnetworks {', '.join(sharing)} use its bridge onto the physical "
                                  "network; remove them first")
        vnet = self.vnetworks.pop(name)
        self._lowest_free.pop(name, None)
        self._refresh_vroutes()
        return vnet

    def _free_cidr(self) -> IPv4Network:
        for candidate in AUTO_POOL.subnets(new_prefix=24):
            if not any(v.cidr.overlaps(candidate) for v in self.vnetworks.values()):
                return candidate
        raise ValidationError("vnetwork cidr", "", f"no free /24 left in {AUTO_POOL}; give a CIDR")

    def used_addresses(self, vnetwork: str) -> set[IPv4Address]:
        return {i.address.ip for n in self.vnodes.values() for i in n.ifaces if i.vnetwork == vnetwork}

    # -- vnodes ------------------------------------------------------------
    def vnode(self, name: str) -> VNode:
        try:
            return self.vnodes[name]
        except KeyError:
            raise NotFoundError("vnode", name, list(self.vnodes)) from None

    def add_vnodes(self, requests: list[VNodeRequest]) -> list[VNode]:
        """Add several vnodes at once: all or none (a bad one leaves the model unchanged)."""
        seen: set[str] = set()
        for request in requests:
            if request.name in self.vnodes or request.name in seen:
                raise AlreadyExistsError("vnode", request.name)
            seen.add(request.name)
        added: list[VNode] = []
        lowest = dict(self._lowest_free)
        # What every vnode added here needs to know of the others, made once (per vnode, it made adding
        # 10,000 vnodes take minutes): the addresses in use per vnetwork, the pnodes' free cores and memory.
        taken: dict[str, set[IPv4Address]] = {}
        free = self._free_per_pnode() if any(r.host is None for r in requests) else {}
        try:
            for request in requests:
                added.append(self._add_vnode(request, taken, free))
        except Exception:
            for vnode in added:
                self.vnodes.pop(vnode.name)
                self.status.pop(vnode.name)
                self.provisional.discard(vnode.name)
            self._next_vnode -= len(added)
            self._lowest_free = lowest
            raise
        return added

    def _add_vnode(self, req: VNodeRequest, taken: dict[str, set[IPv4Address]],
                   free: dict[str, list[int]]) -> VNode:
        host = self._choose_pnode(req, free)
        ifaces = [self._new_iface(req.name, ireq, slot, taken) for slot, ireq in enumerate(req.ifaces)]
        pnode = self.pnodes[host]
        provisional = req.host is None and len(self.pnodes) > 1
        vcpu = req.vcpu.on(f"{req.name}.vcpu", pnode.max_mhz, host) if req.vcpu else None
        vnode = VNode(name=req.name, index=self._next_vnode, host=host, filesystem=req.filesystem,
                      ifaces=tuple(ifaces), ssh_key=req.ssh_key, gateway=req.gateway, vcpu=vcpu,
                      cpuset=self.cores_for(host, vcpu, req.name, provisional) if vcpu else (),
                      vmem=req.vmem.on(f"{req.name}.vmem", pnode.cgroups, host) if req.vmem else None,
                      vio=req.vio.on(f"{req.name}.vfilesystem.disk_throttling", pnode.cgroups, host) if req.vio
                      else None)
        self._next_vnode += 1
        self.vnodes[vnode.name] = vnode
        self.status[vnode.name] = INIT
        if free:
            self._count_in(free, vnode)
        if provisional:
            self.provisional.add(vnode.name)
        return vnode

    def _free_addresses(self, ifaces: Iterable[VIface]) -> None:
        for iface in ifaces:
            number = int(iface.address.ip)
            if number < self._lowest_free.get(iface.vnetwork, number + 1):
                self._lowest_free[iface.vnetwork] = number

    def _new_iface(self, vnode: str, ireq: IfaceRequest, slot: int, taken: dict[str, set[IPv4Address]]) -> VIface:
        """An interface of ``vnode``: its vnetwork, its address (given and checked, or the first free;
        ``taken``: the addresses of each vnetwork, those given out in this call included)."""
        vnet = self._vnetwork_for(vnode, ireq.name, ireq.vnetwork, ireq.address)
        if vnet.name not in taken:  # (setdefault would compute it every time)
            taken[vnet.name] = self.used_addresses(vnet.name)
        used = taken[vnet.name]
        address = ireq.address or self._allocate(vnet, used)
        if ireq.address is not None:
            self._check_address(vnode, ireq.name, vnet, ireq.address, used)
        used.add(address.ip)
        return VIface(name=ireq.name, vnetwork=vnet.name, address=address, default=ireq.default, output=ireq.output,
                      input=ireq.input, mac=ireq.mac or mac_address(self.platform_id, vnode, ireq.name), slot=slot)

    def add_viface(self, vnode: str, ireq: IfaceRequest) -> VNode:
        """One more interface on a vnode that exists (Distem's ``viface_create``); the vnode as it is now."""
        node = self.vnode(vnode)
        if any(i.name == ireq.name for i in node.ifaces):
            raise AlreadyExistsError("viface", f"{vnode}/{ireq.name}")
        slot = max((i.slot for i in node.ifaces), default=-1) + 1
        node = self.vnodes[vnode] = replace(node, ifaces=node.ifaces + (self._new_iface(vnode, ireq, slot, {}),))
        self._refresh_vroutes()
        return node

    def remove_viface(self, vnode: str, iface: str) -> VNode:
        """Distem's ``viface_remove``: the vnode without that interface; routes through it go."""
        node = self.vnode(vnode)
        self._free_addresses([node.iface(iface)])  # NotFoundError naming the interfaces it has
        node = self.vnodes[vnode] = replace(node, ifaces=tuple(i for i in node.ifaces if i.name != iface))
        self.unplugged = self.unplugged - {(vnode, iface)}
        self._refresh_vroutes()
        return node

    def cores_for(self, host: str, vcpu: VCpu, vnode: str, provisional: bool) -> tuple[int, ...]:
        """The cores ``vnode`` is pinned to on ``host``; none yet for a provisional vnode, whose pnode
        placement may change: it only needs some pnode with that many cores."""
        if not provisional:
            return self.assign_cores(host, vcpu, vnode)
        most = max(p.cores for p in self.pnodes.values())
        if vcpu.cores > most:
            raise ValidationError(f"{vnode}.vcpu.corenb", vcpu.cores, f"no pnode has that many cores (at most {most})")
        return ()

    def move_vnode(self, name: str, host: str) -> None:
        """A provisional vnode to another pnode (placement chose it); it is made there at its start."""
        if name not in self.provisional:
            raise ValidationError("vnode", name, "it is made on its pnode already; only vnodes created without "
                                  "a 'host' and not started yet can move")
        if host not in self.pnodes:
            raise ValidationError(f"{name}.host", host, f"known pnodes are {', '.join(self.pnodes)}")
        self.vnodes[name] = replace(self.vnodes[name], host=host)

    def settle(self, name: str) -> VNode:
        """A provisional vnode stays on its pnode from now on, pinned to cores there; the vnode as settled."""
        vnode = self.vnodes[name]
        if name in self.provisional:
            cpuset = self.assign_cores(vnode.host, vnode.vcpu, name) if vnode.vcpu else ()
            vnode = self.vnodes[name] = replace(vnode, cpuset=cpuset)
            self.provisional.discard(name)
        return vnode

    def unsettle(self, vnode: VNode) -> None:
        """Undo ``settle`` (the vnode could not be made on its pnode)."""
        self.vnodes[vnode.name] = vnode
        self.provisional.add(vnode.name)

    def assign_cores(self, host: str, vcpu: VCpu, vnode: str) -> tuple[int, ...]:
        """Pin to the least used cores of ``host`` (lowest index first: deterministic); exclusive
        vnodes get cores no one else uses, and nobody else gets theirs."""
        pnode = self.pnodes[host]
        if vcpu.cores > pnode.cores:
            raise ValidationError(f"{vnode}.vcpu.corenb", vcpu.cores, f"pnode {host} has {pnode.cores} core(s)")
        for controller, needed in (("cpu", vcpu.ratio < 1), ("cpuset", vcpu.cores < pnode.cores or vcpu.exclusive)):
            if needed and controller not in pnode.cgroups:
                raise ValidationError(f"{vnode}.vcpu", vcpu.cores if controller == "cpuset" else vcpu.ratio,
                                      f"pnode {host} has no cgroup {controller} controller mounted "
                                      f"({describe_cgroups(pnode.cgroups)})")
        if "cpuset" not in pnode.cgroups:
            return tuple(range(pnode.cores))  # every core, as without pinning
        load = {core: 0 for core in range(pnode.cores)}
        taken: set[int] = set()
        for other in self.vnodes.values():
            if other.host == host and other.name != vnode:
                for core in other.cpuset:
                    load[core] += 1
                    if other.vcpu and other.vcpu.exclusive:
                        taken.add(core)
        free = [c for c in sorted(load, key=lambda c: (load[c], c)) if c not in taken
                and (not vcpu.exclusive or load[c] == 0)]
        if len(free) < vcpu.cores:
            raise ValidationError(f"{vnode}.vcpu.corenb", vcpu.cores,
                                  f"pnode {host} has {len(free)} core(s) available for it "
                                  f"({self.pnodes[host].cores} in all, {len(taken)} held exclusively)")
        return tuple(sorted(free[:vcpu.cores]))

    def remove_vnode(self, name: str) -> VNode:
        vnode = self.vnode(name)
        self._free_addresses(vnode.ifaces)
        del self.vnodes[name]
        self.status.pop(name, None)
        self.provisional.discard(name)
        self.partition = tuple(g for g in (tuple(n for n in group if n != name) for group in self.partition) if g)
        self.unplugged = frozenset(key for key in self.unplugged if key[0] != name)
        self._refresh_vroutes()
        return vnode

    def set_partition(self, groups: object) -> None:
        """Vnodes of different groups cannot reach each other (both ways); a vnode in no group, and
        vnodes of one group, are not cut. ``()`` heals.

        Raises:
            ValidationError: not lists of vnode names, an unknown vnode, one in two groups, a single group.
        """
        if isinstance(groups, (str, bytes)) or not isinstance(groups, (list, tuple)):
            raise ValidationError("partition", groups, "expected groups of vnode names, e.g. [['a', 'b'], ['c']]")
        out, seen = [], set()
        for group in groups:
            if isinstance(group, str) or not isinstance(group, (list, tuple, set, frozenset)) or not group:
                raise ValidationError("partition", group, "each group is a non-empty list of vnode names")
            for name in group:
                self.vnode(name)
                if name in seen:
                    raise ValidationError("partition", name, "a vnode is in one group at most")
                seen.add(name)
            out.append(tuple(sorted(group)))
        if len(out) == 1:
            raise ValidationError("partition", groups, "a partition needs two groups at least")
        self.partition = tuple(out)

    def set_link(self, vnode: str, iface: str, up: bool) -> None:
        """Interface ``iface`` of ``vnode`` with its link up (the default) or down."""
        self.vnode(vnode).iface(iface)
        key = (vnode, iface)
        self.unplugged = self.unplugged - {key} if up else self.unplugged | {key}

    def partition_drops(self, name: str) -> tuple[str, ...]:
        """The addresses vnode ``name`` must not reach: every interface of the other groups' vnodes."""
        mine = next((g for g in self.partition if name in g), None)
        if mine is None:
            return ()
        return tuple(sorted(str(iface.address.ip) for group in self.partition if group is not mine
                            for other in group for iface in self.vnodes[other].ifaces))

    def update_vnode(self, vnode: VNode) -> None:
        self.vnode(vnode.name)
        self.vnodes[vnode.name] = vnode

    def set_status(self, name: str, status: str) -> None:
        """What a pnode reported of vnode ``name``: READY, RUNNING, DOWN or FROZEN."""
        self.vnode(name)
        self.status[name] = status

    def learn_pnode(self, name: str, facts: Mapping[str, Any]) -> None:
        """What placement and limits need to know of pnode ``name``, from its agent's facts."""
        self.pnodes[name] = replace(self.pnodes[name], cores=facts["cores"], memory=facts["memory"],
                                    max_mhz=facts["max_mhz"], cgroups=facts["cgroups"])

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state, for ``restore``: the event engine rehearses a schedule on
        the model itself, then puts it back."""
        return copy.deepcopy(vars(self))

    def restore(self, snapshot: dict[str, Any]) -> None:
        vars(self).update(copy.deepcopy(snapshot))

    def update_latencies(self, cells: Mapping[tuple[str, str], int]) -> None:
        """These cells of the latency matrix (us; see matrix.py; 0 clears one), as applied; the others stay."""
        for pair, us in cells.items():
            if us:
                self.latencies[pair] = us
            else:
                self.latencies.pop(pair, None)

    def restore_vroutes(self, vroutes: VRoutes) -> None:
        """The routes as they were before a change the pnodes refused."""
        self.vroutes = dict(vroutes)

    def set_gateway(self, name: str, gateway: bool) -> VNode:
        """Gateway mode on or off; off, the routes through this vnode go (automatic ones are recomputed)."""
        if not isinstance(gateway, bool):
            raise ValidationError(f"{name}.mode", gateway, "expected gateway=True or gateway=False")
        vnode = replace(self.vnode(name), gateway=gateway)
        self.vnodes[name] = vnode
        self._refresh_vroutes()
        return vnode

    # -- routes between vnetworks ------------------------------------------
    def add_vroute(self, srcnet: object, dstnet: object, gateway: object) -> VRoute:
        """Route ``dstnet`` from ``srcnet`` through ``gateway``, replacing that pair's route if any."""
        route = check_vroute(srcnet, dstnet, gateway, self.vnetworks, self.vnodes)
        self.vroutes = dict(sorted({**self.vroutes, (route.srcnet, route.dstnet): route}.items()))
        return route

    def complete_vroutes(self) -> list[VRoute]:
        """Routes between every pair of vnetworks joined by gateways (those given explicitly stay)."""
        self.vroutes = with_complete(self.vroutes, self.vnetworks, self.vnodes.values())
        return list(self.vroutes.values())

    def routing_states(self) -> dict[str, RoutingState]:
        """What each vnode's network namespace should hold: forwarding, and its routes."""
        chosen = choose(self.vnetworks, self.vnodes, self.vroutes)
        return {name: routing_state(self.vnodes[name], chosen[name], self.vnetworks, self.vnodes)
                for name in self.vnodes}

    def vroute_users(self) -> dict[tuple[str, str], list[str]]:
        """For each vroute, the vnodes whose tables carry it."""
        users: dict[tuple[str, str], list[str]] = {key: [] for key in self.vroutes}
        for name, table in choose(self.vnetworks, self.vnodes, self.vroutes).items():
            for route in table.values():
                users[(route.srcnet, route.dstnet)].append(name)
        return users

    def _refresh_vroutes(self) -> None:
        # Why here: every removal goes through the model, so no route can outlive what it names.
        self.vroutes = refresh(self.vroutes, self.vnetworks, self.vnodes)

    def _choose_pnode(self, req: VNodeRequest, free: dict[str, list[int]]) -> str:
        if req.host is not None:
            if req.host not in self.pnodes:
                raise ValidationError(f"{req.name}.host", req.host, f"known pnodes are {', '.join(self.pnodes)}")
            return req.host
        # The most free cores, then the most free memory (what hosted vnodes ask, as placement counts
        # it), then the name: deterministic. Free may go below zero: vnodes then share cores.
        return min(free, key=lambda p: (-free[p][0], -free[p][1], p))

    def _free_per_pnode(self) -> dict[str, list[int]]:
        """Each pnode's [cores, memory] less what its vnodes ask."""
        free = {name: [p.cores, p.memory or 0] for name, p in self.pnodes.items()}
        for vnode in self.vnodes.values():
            self._count_in(free, vnode)
        return free

    @staticmethod
    def _count_in(free: dict[str, list[int]], vnode: VNode) -> None:
        from .placement.demand import demand_of_vnode  # lazily: the placement package loads networkx

        demand = demand_of_vnode(vnode)
        free[vnode.host][0] -= demand.cores
        free[vnode.host][1] -= demand.memory

    def _vnetwork_for(self, vnode: str, iface: str, name: str | None, address: IPv4Interface | None) -> VNetwork:
        if name is not None:
            if name not in self.vnetworks:
                raise ValidationError(f"{vnode}.{iface}.vnetwork", name,
                                      f"no such vnetwork (known: {', '.join(self.vnetworks) or 'none'}); create it first")
            return self.vnetworks[name]
        assert address is not None
        for vnet in self.vnetworks.values():
            if address.ip in vnet.cidr:
                return vnet
        raise ValidationError(f"{vnode}.{iface}.address", str(address), "it lies in no vnetwork; create the vnetwork first")

    def _allocate(self, vnet: VNetwork, used: set[IPv4Address]) -> IPv4Interface:
        """The lowest free address: from where the last one was given (below it, all are taken; a removal
        moves it back), not from the first each time."""
        first, last = int(vnet.cidr.network_address) + 1, int(vnet.cidr.broadcast_address) - 1
        for number in range(max(first, self._lowest_free.get(vnet.name, first)), last + 1):
            ip = IPv4Address(number)
            if ip not in used and ip != vnet.reserved.ip:
                self._lowest_free[vnet.name] = number + 1
                return IPv4Interface(f"{ip}/{vnet.cidr.prefixlen}")
        usable = vnet.cidr.num_addresses - 3
        raise ValidationError(f"vnetwork {vnet.name!r}", str(vnet.cidr),
                              f"no free address left ({usable} usable, all in use); use a larger CIDR")

    @staticmethod
    def _check_address(vnode: str, iface: str, vnet: VNetwork, address: IPv4Interface,
                       used: set[IPv4Address]) -> None:
        field = f"{vnode}.{iface}.address"
        if address.network != vnet.cidr:
            raise ValidationError(field, str(address), f"it must lie in vnetwork {vnet.name!r} ({vnet.cidr}) with the same prefix")
        if address.ip in (vnet.cidr.network_address, vnet.cidr.broadcast_address, vnet.reserved.ip):
            raise ValidationError(field, str(address), "the network, broadcast and last (pnode) addresses are reserved")
        if address.ip in used:
            raise ValidationError(field, str(address), "the address is already used in this vnetwork")
