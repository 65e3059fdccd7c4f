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

from typing import Literal

from ..model.entities import VNode
from ..model.links import LinkLimits
from ..model.names import ifb_name, link_alias, veth_name
from .ops import FifoReplace, HtbReplace, IfbCreate, NetemReplace, Op, Plan, RedirectIngress, ShapingClear

Backend = Literal["netem", "userspace"]
UNLIMITED_BPS = 10 * 10**9
MTU_BYTES = 1500
MIN_QUEUE = 32
MAX_QUEUE = 200_000
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
    """``keep``: an empty ``limits`` still gets the tree (the latency matrix hangs from it)."""
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


def vnode_shaping(platform_id: str, vnode: VNode, backend: Backend, fresh: bool = False,
                  matrix_ifaces: frozenset[int] = frozenset()) -> Plan:
    """The shaping of every interface of ``vnode``; applied after each start (``fresh``: the veths
    were just made, so there is nothing to clear) and on live changes. ``matrix_ifaces``: the
    interfaces carrying latency-matrix cells, whose output path is shaped even without limits."""
    owner = f"vnode:{vnode.name}"
    ops: list[Op] = []
    for i, iface in enumerate(vnode.ifaces):
        output = iface.output or (LinkLimits() if i in matrix_ifaces else None)
        if fresh and not (iface.input or output is not None):
            continue
        veth = veth_name(platform_id, vnode.index, i)
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

