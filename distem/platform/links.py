"""Link limits, live: Distem's viface/vinput/voutput updates, and each vnode's tc trees and delay-line
settings (with its latency-matrix cells) when it starts or its limits change.

A live change replaces the htb class and the leaf qdisc in place (never
delete + add), so connections survive it and unchanged properties stay.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..errors import AgentError, FidelityWarning, ValidationError
from ..model import FROZEN, RUNNING, PlatformModel, VIface, VNode
from ..model.links import parse_limits
from ..plan.matrix import DeviceMatrix, destinations
from ..model.names import veth_name
from ..plan.ops import LinkState, Op
from ..wire import vnode_owner
from ..plan.shaping import check_limits, direction_update, partition_ops, vnode_shaping
from .matrix import Matrix
from .pool import PnodePool

Wire = list[dict[str, Any]]


class Links:
    """No state of its own: the limits are the model's, what the devices hold of the matrix is ``Matrix``'s."""

    def __init__(self, model: PlatformModel, pool: PnodePool, matrix: Matrix) -> None:
        self.model, self.pool, self.matrix = model, pool, matrix

    def viface_update(self, vnode: str, iface: str, desc: Mapping[str, Any]) -> None:
        """Change an interface's ``input``/``output`` limits live; properties not given are kept."""
        unknown = set(desc) - {"input", "output"}
        if unknown:
            raise ValidationError(f"{vnode}.{iface}", sorted(unknown)[0],
                                  "only 'input' and 'output' can change on an existing interface")
        node = self.model.vnode(vnode)
        old = node.iface(iface)
        new = replace(old, **{d: parse_limits(f"{vnode}.{iface}.{d}", desc[d], getattr(old, d))
                              for d in ("input", "output") if d in desc})
        updated = replace(node, ifaces=tuple(new if i.name == iface else i for i in node.ifaces))
        self.check(updated)
        self.model.update_vnode(updated)
        if self.model.status[vnode] in (RUNNING, FROZEN):  # else applied at the next start
            ops = self._update(updated, old.slot, old, new)
            try:
                self.pool.call(node.host, "apply", ops=ops if ops is not None else self.shaping([vnode])[vnode])
            except AgentError:
                self.model.update_vnode(node)
                raise

    def _update(self, vnode: VNode, slot: int, old: VIface, new: VIface) -> Wire | None:
        """Only what changed on one interface, when its trees stay (None: the vnode's whole shaping)."""
        table = self.matrix.applied.get((vnode.name, slot), DeviceMatrix()).delays
        ops: list[Op] = []
        for direction in ("input", "output"):
            before, after = getattr(old, direction), getattr(new, direction)
            if before != after:
                change = direction_update(self.model.platform_id, vnode, slot, direction, before, after,
                                          self.pool.backend(vnode.host), table)
                if change is None:
                    return None
                ops += change
        return [op.to_wire() for op in ops]

    def link(self, vnode: str, iface: str, up: bool) -> None:
        """The interface's link down (its cable out: the vnode sees no carrier, nothing passes) or up."""
        if not isinstance(up, bool):
            raise ValidationError(f"{vnode}.{iface}.link", up, "expected up=True or up=False")
        before = self.model.unplugged
        self.model.set_link(vnode, iface, up)
        node = self.model.vnode(vnode)
        if self.model.status[vnode] in (RUNNING, FROZEN) and before != self.model.unplugged:
            op = LinkState(owner=vnode_owner(vnode), device=veth_name(self.model.platform_id, node.index,
                                                                     node.iface(iface).slot), up=up)
            try:
                self.pool.call(node.host, "apply", ops=[op.to_wire()])
            except AgentError:
                self.model.unplugged = before
                raise

    def partition(self, *groups: Sequence[str]) -> None:
        """Cut the platform into ``groups`` of vnodes: no packet goes between two groups (dropped as it
        leaves its sender, silently, as a cut cable would); inside a group, and for vnodes in no
        group, links work as before. A new partition replaces the last; ``heal()`` ends it.

        Raises:
            ValidationError: unknown vnodes, a vnode in two groups, fewer than two groups.
        """
        before = self.model.partition
        self.model.set_partition(list(groups))
        self._cut(before)

    def heal(self) -> None:
        """No partition any more."""
        before = self.model.partition
        self.model.set_partition(())
        self._cut(before)

    def _cut(self, before: tuple[tuple[str, ...], ...]) -> None:
        """The running vnodes whose drops changed get their new list; the model goes back if a pnode refuses."""
        now, plans = self.model.partition, {}
        self.model.partition = before
        old = {n: self.model.partition_drops(n) for n in self.model.vnodes}
        self.model.partition = now
        for name, status in self.model.status.items():
            drops = self.model.partition_drops(name)
            if status in (RUNNING, FROZEN) and drops != old[name]:
                vnode = self.model.vnode(name)
                plans.setdefault(vnode.host, []).extend(
                    op.to_wire() for op in partition_ops(self.model.platform_id, vnode, drops))
        try:
            self.pool.apply(plans, "Partitioning")
        except AgentError:
            self.model.partition = before
            raise

    def check(self, vnode: VNode) -> None:
        """Refuse, before any change, what this vnode's pnode cannot emulate; warn (FidelityWarning)
        where the userspace delay line may not keep up with the asked rate."""
        for warning in check_limits(vnode, self.pool.backend(vnode.host), self.pool.facts(vnode.host)):
            # at the user's line: here <- the part's call <- the Platform's <- the user's
            warnings.warn(warning, FidelityWarning, stacklevel=4)

    def shaping(self, names: Iterable[str], fresh: bool = False) -> dict[str, Wire]:
        """Each vnode's tc trees, delay-line settings and latency-matrix cells (``fresh``: just started)."""
        tables = destinations(self.model.vnodes, self.model.latencies)
        out = {}
        for name in names:
            vnode = self.model.vnode(name)
            carrying = frozenset(i for (source, i), table in tables.items() if source == name and table)
            if carrying:
                self.matrix.check_backend(name)
            ops = list(vnode_shaping(self.model.platform_id, vnode, self.pool.backend(vnode.host), fresh, carrying,
                                     tables, self.model.partition_drops(name),
                                     frozenset(i for v, i in self.model.unplugged if v == name)))
            ops += self.matrix.with_shaping(vnode, tables, fresh, carrying)
            if ops:
                out[name] = [op.to_wire() for op in ops]
        return out
