"""A vnode's routing as operations (pure): from what its network namespace holds to what the model wants.

Only the differences become operations, so a live change touches only the routes that change, and
the same function gives a vnode its whole routing at start (from an empty namespace). Order:
forwarding on first, then deletions, then replacements, forwarding off last.
"""

from __future__ import annotations

from ..model.routes import RoutingState
from ..wire import vnode_owner
from .ops import ForwardingSet, Op, Plan, RouteDelete, RouteReplace

FRESH = RoutingState()  # a namespace LXC just made: no forwarding, only the connected routes


def routing_plan(vnode: str, have: RoutingState, want: RoutingState) -> Plan:
    """The operations that turn ``have`` into ``want`` in ``vnode``'s network namespace."""
    owner = vnode_owner(vnode)
    ops: list[Op] = []
    if want.forwarding and have.forwarding is not True:
        ops.append(ForwardingSet(owner=owner, vnode=vnode, enabled=True))
    held = {r.destination: r for r in have.routes}
    wanted = {r.destination: r for r in want.routes}
    ops += [RouteDelete(owner=owner, vnode=vnode, destination=str(d)) for d in sorted({*held, *have.unsure})
            if d not in wanted]
    ops += [RouteReplace(owner=owner, vnode=vnode, destination=str(r.destination), via=str(r.via), device=r.device)
            for d, r in sorted(wanted.items()) if held.get(d) != r]
    if not want.forwarding and have.forwarding is not False:
        ops.append(ForwardingSet(owner=owner, vnode=vnode, enabled=False))
    return tuple(ops)
