"""Link limits as tc trees (pure).

Each shaped direction of a viface gets the same tree, on the device its
packets leave through:

    root 1: htb default 2
      class 1:1  rate R ceil R burst B      (R: the asked rate, or UNLIMITED)
        class 1:2  rate 8kbit ceil R        (borrows all of 1:1's rate)
          leaf 10: netem ... limit N        (kernel path)  |  pfifo limit N
        class 1:1xx ... leaf 1xx: netem     (latency matrix: one per distinct delay, see matrix.py)

``input`` (entering the vnode) is shaped on the host-side veth's egress.
``output`` (leaving the vnode) arrives on the host-side veth's *ingress*,
which cannot queue, so it is redirected to an ifb device and shaped on the
ifb's egress — outside the vnode, so TCP small queues in the sender never see
the delay. Live changes replace the class and the leaf in place.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from ..errors import ValidationError
from ..model.entities import VNode
from ..model.links import LinkLimits
from ..model.names import ifb_name, iptables_chain, link_alias, sink_name, veth_name
from ..wire import vnode_owner
from .ops import (DelayLineClear, DelayLineSet, FifoReplace, HtbReplace, IfbCreate, LinkState, NetemReplace, Op,
                  PartitionSet, Plan, RedirectIngress, ShapingClear)

Backend = Literal["netem", "userspace"]
UNLIMITED_BPS = 10 * 10**9
MTU_BYTES = 1500
MIN_QUEUE = 32
MAX_QUEUE = 200_000
FRAME_BYTES = 1514  # a full Ethernet frame at MTU 1500: how a rate turns into packets per second
# Packets per second the userspace delay line (one Python process, NFQUEUE) holds to its delay on a
# 2-core pnode even while other work shares the cores (70,000 on an otherwise idle one):
# benchmarks/results/delayline.md, docs/links.md.
USERSPACE_CEILING_PPS = 40_000
BUFFER_S = 0.1  # queueing beyond what is in flight: 100 ms of the rate, as a shaped link would have


def htb_burst(rate_bps: int) -> int:
    """htb needs a burst of at least one timer tick of traffic plus a packet (~15 kB floor)."""
    return max(15_000, rate_bps // 8 // 250 + 1600)


def queue_limit(limits: LinkLimits) -> int:
    """Packets: 1.5 bandwidth-delay products (so rate + delay still reaches the rate) plus 100 ms
    of the rate; no more, or a slow link holds seconds of traffic (1,000 packets = 12 s at 1 Mbit/s)."""
    packets_per_s = (limits.rate_bps or UNLIMITED_BPS) / 8 / MTU_BYTES
    in_flight = packets_per_s * (limits.delay_us + limits.jitter_us) / 1e6
    return int(min(MAX_QUEUE, max(MIN_QUEUE, 1.5 * in_flight + packets_per_s * BUFFER_S)))


def direction_ops(owner: str, device: str, limits: LinkLimits | None, backend: Backend,
                  keep: bool = False) -> list[Op]:
    """The tc tree of one direction on ``device`` (the veth for input, the ifb for output);
    ``keep``: an empty ``limits`` still gets the tree (the latency matrix hangs from it)."""
    if not limits and not keep:
        return [ShapingClear(owner=owner, device=device)]
    limits = limits or LinkLimits()
    rate = limits.rate_bps or UNLIMITED_BPS
    ops: list[Op] = [HtbReplace(owner=owner, device=device, rate_bps=rate, burst_bytes=htb_burst(rate))]
    # The leaf keeps its kind for the pnode's life: the kernel cannot replace a qdisc by one of
    # another kind under the same handle, and netem without delay is a plain FIFO.
    if backend == "netem":
        ops.append(NetemReplace(owner=owner, device=device, limit=queue_limit(limits), limits=limits))
    else:
        ops.append(FifoReplace(owner=owner, device=device, limit=queue_limit(limits)))
    return ops


def delay_line_ops(platform_id: str, owner: str, veth: str, direction: str, limits: LinkLimits | None,
                   destinations: Mapping[str, int] | None = None) -> list[Op]:
    """The userspace delay line's part of one direction: on, with the limits (and, on output, the
    latency matrix's delay per destination address, us), or off."""
    chain, comment = iptables_chain(platform_id), link_alias(platform_id)
    if (limits and limits.needs_delay_line) or destinations:
        return [DelayLineSet(owner=owner, device=veth, direction=direction, chain=chain, comment=comment,
                             limits=limits or LinkLimits(), destinations=dict(sorted((destinations or {}).items())))]
    return [DelayLineClear(owner=owner, device=veth, direction=direction, chain=chain, comment=comment)]


def vnode_shaping(platform_id: str, vnode: VNode, backend: Backend, fresh: bool = False,
                  matrix_ifaces: frozenset[int] = frozenset(),
                  tables: Mapping[tuple[str, int], Mapping[str, int]] | None = None,
                  drops: tuple[str, ...] = (), unplugged: frozenset[str] = frozenset()) -> Plan:
    """The shaping of every interface of ``vnode``; applied after each start (``fresh``: the veths
    were just made, so there is nothing to clear) and on live changes. Latency-matrix cells
    (``tables``: (vnode, interface index) -> {destination: us}) go to the userspace delay line;
    with netem, ``matrix_ifaces`` (the interfaces carrying cells) get an output tree even without
    limits, and plan/matrix.py hangs the cells from it. ``drops``: the addresses a partition keeps
    it from (``partition_ops``); ``unplugged``: its interfaces whose link is down."""
    owner = vnode_owner(vnode.name)
    ops: list[Op] = partition_ops(platform_id, vnode, drops) if drops else []
    ops += [LinkState(owner=owner, device=veth_name(platform_id, vnode.index, iface.slot), up=False)
            for iface in vnode.ifaces if iface.name in unplugged]
    for iface in vnode.ifaces:
        i = iface.slot
        veth = veth_name(platform_id, vnode.index, i)
        if backend == "userspace":  # rules outlive the veths: cleared even on fresh ones (a no-op without one)
            ops += delay_line_ops(platform_id, owner, veth, "input", iface.input)
            ops += delay_line_ops(platform_id, owner, veth, "output", iface.output, (tables or {}).get((vnode.name, i)))
        output = iface.output or (LinkLimits() if backend == "netem" and i in matrix_ifaces else None)
        if fresh and not (iface.input or output is not None):
            continue
        ops += direction_ops(owner, veth, iface.input, backend)
        if output is not None:
            ifb = ifb_name(platform_id, vnode.index, i)
            ops.append(IfbCreate(owner=owner, name=ifb, alias=link_alias(platform_id)))
            if fresh and i in matrix_ifaces:  # the ifb outlives a stop: its old matrix goes first
                ops.append(ShapingClear(owner=owner, device=ifb))
            ops.append(RedirectIngress(owner=owner, device=veth, ifb=ifb))
            ops += direction_ops(owner, ifb, output, backend, keep=True)
        else:
            ops.append(ShapingClear(owner=owner, device=veth, root=False, ingress=True))
    return tuple(ops)



def partition_ops(platform_id: str, vnode: VNode, drops: tuple[str, ...]) -> list[Op]:
    """On every interface of ``vnode``: drop what it sends to ``drops`` (empty: heal)."""
    return [PartitionSet(owner=vnode_owner(vnode.name), device=veth_name(platform_id, vnode.index, iface.slot),
                         sink=sink_name(platform_id), alias=link_alias(platform_id), addresses=drops)
            for iface in vnode.ifaces]


def direction_update(platform_id: str, vnode: VNode, slot: int, direction: str, old: LinkLimits | None,
                     new: LinkLimits | None, backend: Backend, table: Mapping[str, int]) -> list[Op] | None:
    """The few operations that take one direction of interface ``slot`` from ``old`` to ``new``
    limits when its tc tree stays (a live change, an event); None when the whole shaping is needed:
    a tree appears or goes, or (netem) the latency matrix's leaves on output must follow. ``table``:
    the matrix's delays from this interface (the userspace delay line gets them with its output)."""
    if not old or not new or (backend == "netem" and direction == "output" and table):
        return None
    owner = vnode_owner(vnode.name)
    veth = veth_name(platform_id, vnode.index, slot)
    device = veth if direction == "input" else ifb_name(platform_id, vnode.index, slot)
    if backend == "netem":
        return direction_ops(owner, device, new, backend)  # htb and netem replaced in place
    ops = delay_line_ops(platform_id, owner, veth, direction, new, table if direction == "output" else None)
    if (new.rate_bps, queue_limit(new)) != (old.rate_bps, queue_limit(old)):
        ops += direction_ops(owner, device, new, backend)
    return ops


def check_limits(vnode: VNode, backend: Backend, facts: Mapping[str, Any]) -> list[str]:
    """Raise ValidationError for what ``vnode``'s pnode (its ``facts``) cannot emulate; the warnings
    where its userspace delay line may not keep up with the asked rate."""
    if backend == "netem":
        return []
    no_netem = f"pnode {vnode.host}'s kernel has no sch_netem (it has: {', '.join(facts.get('qdiscs', []))})"
    said = []
    for iface in vnode.ifaces:
        for direction in ("output", "input"):
            limits = getattr(iface, direction)
            if not (limits and limits.needs_delay_line):
                continue
            field = f"{vnode.name}.{iface.name}.{direction}"
            missing = [name for name, ppm in (("corruption", limits.corrupt_ppm),
                                              ("duplication", limits.duplicate_ppm)) if ppm]
            if missing:
                raise ValidationError(field, limits.to_distem(), f"{no_netem}; its userspace delay line does "
                                      f"'latency' (delay, jitter), 'loss' and 'reordering', not "
                                      f"{' or '.join(missing)}")
            reason = facts.get("delay_line_unavailable")
            if reason:
                raise ValidationError(field, limits.to_distem(), f"{no_netem}, and its userspace delay line "
                                      f"cannot run: {reason}; only 'bandwidth' can be emulated there")
            pps = (limits.rate_bps or 0) / 8 / FRAME_BYTES
            if pps > USERSPACE_CEILING_PPS:
                said.append(f"{field}: {limits.rate_bps / 1e6:g} Mbit/s is up to {pps:,.0f} packets/s of "
                            f"{FRAME_BYTES} bytes, beyond the {USERSPACE_CEILING_PPS:,} packets/s the userspace "
                            f"delay line of pnode {vnode.host} keeps up with (no sch_netem there): expect "
                            "longer delays and losses at full rate")
    return said
