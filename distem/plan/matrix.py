"""The latency matrix as tc trees (pure): per source interface, a u32 hash table on the destination
address picks one htb class per distinct delay, whose netem leaf adds that delay.

    root 1: htb default 2                    (shaping.py: the interface's own tree)
      class 1:1 rate R
        class 1:2            leaf 10:        no matrix delay (other destinations, ARP)
        class 1:(0x100+k)    leaf (0x100+k): interface limits + the k-th distinct delay
    filter prio 10: every IPv4 packet -> table 10: bucket (last byte of the destination)
    table 10:, bucket b: destination/32 -> class 1:(0x100+k)

Cost per packet: one hash lookup and the few entries of one bucket, whatever
the number of destinations. Cell (i, j) is applied on i's interface that
shares a vnetwork with j (its first one when none does), on the output path
(the ifb), so the matrix coexists with that interface's rate, delay and loss.
A change is sent as the difference with what the device holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address

from ..errors import ValidationError
from ..model.entities import VNode
from ..model.links import LinkLimits
from ..model.names import ifb_name, link_alias, veth_name
from ..wire import vnode_owner
from .ops import DelayLineCells, IfbCreate, MatrixReplace, Op, RedirectIngress, ShapingClear
from .shaping import UNLIMITED_BPS, Backend, delay_line_ops, direction_ops, htb_burst, queue_limit

Applied = Mapping[tuple[str, int], "DeviceMatrix"]  # (vnode, interface index) -> what its device holds

FIRST_CLASS = 0x100
MAX_CLASSES = 0xFF00  # class minors and leaf majors stay below 0xffff


@dataclass(frozen=True, slots=True)
class DeviceMatrix:
    """What one ifb holds: destination address -> delay (us), the class of each delay, and the u32 slot
    of each address (its bucket << 12 | its node), kept while the address is held: a change touches only
    the addresses it changes, and a clash's second address keeps its node when the first goes."""

    delays: Mapping[str, int] = field(default_factory=dict)
    classes: Mapping[int, int] = field(default_factory=dict)  # delay_us -> class minor
    table: bool = False  # the hash table and the filter into it exist
    slots: Mapping[str, int] = field(default_factory=dict)  # address -> bucket << 12 | node


def destinations(vnodes: Mapping[str, VNode], cells: Mapping[tuple[str, str], int],
                 sources: Iterable[str] | None = None) -> dict[tuple[str, int], dict[str, int]]:
    """(source vnode, interface slot) -> {destination address: delay_us}, for the non-zero cells;
    of ``sources`` only, when given: one look-up per vnode each, not a pass over every cell."""
    out: dict[tuple[str, int], dict[str, int]] = {}
    if sources is None:
        pairs = sorted(cells.items())
    else:
        targets = sorted(vnodes)
        pairs = [((src, dst), cells.get((src, dst), 0)) for src in sorted(sources) for dst in targets]
    for (src, dst), us in pairs:
        place = cell_place(vnodes.get(src), vnodes.get(dst))
        if us and place:
            out.setdefault((src, place[0]), {})[place[1]] = us
    return out


def cell_place(source: VNode | None, target: VNode | None) -> tuple[int, str] | None:
    """Where cell (source, target) goes: the slot of source's interface that shares a vnetwork with target
    (its first when none does) and target's address there; None when either has no interface."""
    if source is None or target is None or not source.ifaces or not target.ifaces:
        return None
    shared = [(s.slot, t.address.ip) for s in source.ifaces for t in target.ifaces if s.vnetwork == t.vnetwork]
    slot, address = shared[0] if shared else (source.ifaces[0].slot, target.ifaces[0].address.ip)
    return slot, str(address)


def changed_tables(vnodes: Mapping[str, VNode], applied: Applied,
                   changed: Mapping[tuple[str, str], int]) -> dict[tuple[str, int], dict[str, int]]:
    """The tables of the sources of ``changed`` cells: what their devices hold (``applied``) with those
    cells changed. Only the changed cells are looked at: a one-cell change costs the same at any N."""
    out = {(src, iface.slot): dict(applied.get((src, iface.slot), DeviceMatrix()).delays)
           for src in {s for s, _ in changed} if src in vnodes for iface in vnodes[src].ifaces}
    for (src, dst), us in changed.items():
        place = cell_place(vnodes.get(src), vnodes.get(dst))
        if place is None:
            continue
        table = out[(src, place[0])]
        if us:
            table[place[1]] = us
        else:
            table.pop(place[1], None)
    return out


def slot_of(address: str, taken: set[int]) -> int:
    """The u32 slot of ``address``: its bucket (the last byte) << 12 | its node, from the address's next 11
    bits; a clash with another address of the bucket takes the next free node."""
    value = int(IPv4Address(address))
    bucket, node = value & 0xFF, ((value >> 8) & 0x7FF) + 1
    while bucket << 12 | node in taken:
        node = node % 0xFFF + 1
    return bucket << 12 | node


def allocate(old: DeviceMatrix, delays: Mapping[str, int]) -> DeviceMatrix:
    """Keep the classes of delays still used and the slots of addresses still held; new delays take
    the lowest free class minors, new addresses a free slot."""
    wanted = set(delays.values())
    classes = {us: minor for us, minor in old.classes.items() if us in wanted}
    free = (m for m in range(FIRST_CLASS, FIRST_CLASS + MAX_CLASSES) if m not in classes.values())
    for us in sorted(wanted - set(classes)):
        classes[us] = next(free)
    slots = old.slots
    added, gone = delays.keys() - slots.keys(), slots.keys() - delays.keys()
    if added or gone:
        slots = {a: slot for a, slot in slots.items() if a not in gone}
        taken = set(slots.values())
        for address in sorted(added):
            slots[address] = slot_of(address, taken)
            taken.add(slots[address])
    return DeviceMatrix(delays=dict(delays), classes=classes, table=old.table or bool(delays), slots=slots)


def device_plan(owner: str, device: str, limits: LinkLimits, old: DeviceMatrix, new: DeviceMatrix,
                limits_changed: bool) -> MatrixReplace | None:
    """The difference between ``old`` and ``new`` on ``device`` as one op (None: nothing to do).
    ``limits_changed``: the interface's own limits moved, so every leaf is rewritten. Only the addresses
    whose delay changed are looked at (a class kept keeps its minor): a cell costs the same at any N."""
    rate = limits.rate_bps or UNLIMITED_BPS
    set_classes = tuple(sorted(
        (minor, queue_limit(with_delay), with_delay)
        for us, minor in new.classes.items()
        if limits_changed or old.classes.get(us) != minor
        for with_delay in [replace(limits, delay_us=limits.delay_us + us)]))
    drop_classes = tuple(sorted(set(old.classes.values()) - set(new.classes.values())))
    moved = dict(new.delays.items() - old.delays.items())
    entries = tuple((a, new.slots[a] & 0xFFF, new.classes[us]) for a, us in sorted(moved.items())
                    if old.classes.get(old.delays.get(a, -1)) != new.classes[us])
    drops = tuple((a, old.slots[a] & 0xFFF) for a in sorted(old.delays.keys() - new.delays.keys()))
    if not (set_classes or drop_classes or entries or drops):
        return None
    return MatrixReplace(owner=owner, device=device, rate_bps=rate, burst_bytes=htb_burst(rate),
                         table=bool(new.delays) and not old.table,
                         set_classes=set_classes, drop_classes=drop_classes, entries=entries, drop_entries=drops)


def check_size(vnode: str, new: DeviceMatrix) -> None:
    if len(new.classes) > MAX_CLASSES:
        raise ValidationError(f"latencies from {vnode}", f"{len(new.classes)} distinct delays",
                              f"one interface holds at most {MAX_CLASSES} distinct delays (round them to fewer)")



def delay_line_change(platform_id: str, owner: str, veth: str, output: LinkLimits | None,
                      old: Mapping[str, int], new: Mapping[str, int]) -> list[Op]:
    """The delay line's part of a matrix change on one output: the cells that differ when it holds a table
    and keeps one (the others are not sent again); else the whole setting (or none: no limits, no table)."""
    if old == new:
        return []
    if not (old and new):
        return delay_line_ops(platform_id, owner, veth, "output", output, new)
    return [DelayLineCells(owner=owner, device=veth, drop=tuple(sorted(set(old) - set(new))),
                           destinations={a: us for a, us in sorted(new.items()) if old.get(a) != us})]


def vnode_matrix_ops(platform_id: str, vnode: VNode, backend: Backend, applied: Applied,
                     tables: Mapping[tuple[str, int], Mapping[str, int]], fresh: bool, limits_changed: bool,
                     shaped: bool = False) -> tuple[list[Op], dict[tuple[str, int], DeviceMatrix]]:
    """The matrix changes on each interface of ``vnode`` and the state they leave, from what
    ``applied`` says each device holds and the wanted ``tables`` (see ``destinations``).

    ``fresh``: just started, nothing there; ``limits_changed``: the interface's limits moved, leaves
    follow; ``shaped``: vnode_shaping runs first and makes or keeps the output trees. Without netem
    (``backend`` "userspace") each interface whose table changed sends the delay line its output
    settings with the new table (one control message; the rule and the packets in flight stay).
    """
    owner = vnode_owner(vnode.name)
    ops: list[Op] = []
    states = {}
    for iface in vnode.ifaces:
        key = (vnode.name, iface.slot)
        ifb, veth = ifb_name(platform_id, vnode.index, iface.slot), veth_name(platform_id, vnode.index, iface.slot)
        if backend == "userspace":
            table = dict(tables.get(key, {}))
            ops += delay_line_change(platform_id, owner, veth, iface.output, applied.get(key, DeviceMatrix()).delays,
                                     table)
            states[key] = DeviceMatrix(delays=table)
            continue
        old = DeviceMatrix() if fresh else applied.get(key, DeviceMatrix())
        new = allocate(old, tables.get(key, {}))
        check_size(vnode.name, new)
        if not shaped and new.delays and not old.delays and not iface.output:  # no output tree yet
            ops += [IfbCreate(owner=owner, name=ifb, alias=link_alias(platform_id)),
                    RedirectIngress(owner=owner, device=veth, ifb=ifb),
                    *direction_ops(owner, ifb, None, "netem", keep=True)]
        if not shaped and old.delays and not new.delays and not iface.output:  # only there for the matrix
            ops += [ShapingClear(owner=owner, device=ifb), ShapingClear(owner=owner, device=veth, root=False,
                                                                        ingress=True)]
            new = DeviceMatrix()
        else:
            change = device_plan(owner, ifb, iface.output or LinkLimits(), old, new, limits_changed)
            ops += [change] if change else []
        states[key] = new
    return ops, states
