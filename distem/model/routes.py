"""Routes between vnetworks (pure): Distem's vroutes, the graph they follow, each vnode's routing table.

A vroute says "vnetwork ``dstnet`` is reached from ``srcnet`` through ``gateway``": a vnode in
gateway mode (IPv4 forwarding on) with an interface on ``srcnet``. Every other vnode of ``srcnet``
sends traffic for ``dstnet`` to the gateway's address on ``srcnet``.

``complete`` makes them all over the *vnetwork graph*: its nodes are the vnetworks, and an edge
joins two vnetworks a gateway vnode has interfaces on. Per destination, one breadth-first tree of
shortest paths (networkx) gives every vnetwork its next hop, so the hops of a multi-hop path agree:
the next gateway's own route to the destination is the rest of the same path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, ip_address
from itertools import combinations

import networkx as nx

from ..errors import ValidationError
from .entities import VIface, VNetwork, VNode

VRoutes = dict[tuple[str, str], "VRoute"]  # keyed by (srcnet, dstnet): one route per pair, as in Distem


@dataclass(frozen=True, slots=True, kw_only=True)
class VRoute:
    srcnet: str
    dstnet: str
    gateway: str  # a vnode in gateway mode with an interface on srcnet
    auto: bool = False  # made by vroute_complete: computed again when a gateway or vnetwork goes


@dataclass(frozen=True, slots=True, kw_only=True)
class Route:
    """One entry of a vnode's routing table: ``ip route replace DESTINATION via VIA dev DEVICE``."""

    destination: IPv4Network
    via: IPv4Address
    device: str  # the vnode's own interface on the vroute's srcnet


@dataclass(frozen=True, slots=True, kw_only=True)
class RoutingState:
    """The routing a vnode's network namespace holds: IPv4 forwarding, and its routes by destination.

    After a change failed half-way, what is held is partly unknown: ``forwarding`` None and the
    destinations in ``unsure``; the next change sets those whatever they are.
    """

    forwarding: bool | None = False
    routes: tuple[Route, ...] = ()
    unsure: tuple[IPv4Network, ...] = ()


def either(have: RoutingState, want: RoutingState) -> RoutingState:
    """What a namespace holds when a change from ``have`` to ``want`` may have stopped anywhere."""
    same = tuple(r for r in want.routes if r in have.routes)
    unsure = {r.destination for r in (*have.routes, *want.routes) if r not in same} | set(have.unsure)
    return RoutingState(forwarding=have.forwarding if have.forwarding == want.forwarding else None,
                        routes=same, unsure=tuple(sorted(unsure)))


def iface_on(vnode: VNode, vnetwork: str) -> VIface | None:
    """The vnode's (first) interface on ``vnetwork``."""
    return next((i for i in vnode.ifaces if i.vnetwork == vnetwork), None)


def vnetwork_graph(vnetworks: Iterable[str], vnodes: Iterable[VNode]) -> nx.Graph[str]:
    """Vnetworks joined by the gateway vnodes on both; edge attribute ``gateways``: their names, sorted.

    Built in sorted order, so that shortest paths (and their ties) do not depend on hash order.
    """
    graph: nx.Graph[str] = nx.Graph()
    graph.add_nodes_from(sorted(vnetworks))
    for vnode in sorted((v for v in vnodes if v.gateway), key=lambda v: v.name):
        for a, b in combinations(sorted({i.vnetwork for i in vnode.ifaces}), 2):
            if graph.has_edge(a, b):
                graph.edges[a, b]["gateways"].append(vnode.name)
            else:
                graph.add_edge(a, b, gateways=[vnode.name])
    return graph


def complete(vnetworks: Iterable[str], vnodes: Iterable[VNode]) -> VRoutes:
    """A route for every ordered pair of vnetworks joined by a path of gateways, along a shortest path."""
    graph = vnetwork_graph(vnetworks, vnodes)
    routes: VRoutes = {}
    for dstnet in graph.nodes:
        for srcnet, path in nx.single_source_shortest_path(graph, dstnet).items():
            if srcnet != dstnet:  # path runs dstnet ... next hop, srcnet
                gateway = graph.edges[srcnet, path[-2]]["gateways"][0]
                routes[(srcnet, dstnet)] = VRoute(srcnet=srcnet, dstnet=dstnet, gateway=gateway, auto=True)
    return dict(sorted(routes.items()))


def with_complete(vroutes: VRoutes, vnetworks: Iterable[str], vnodes: Iterable[VNode]) -> VRoutes:
    """``vroutes`` with its automatic routes computed again; routes given with vroute_create stay."""
    explicit = {k: r for k, r in vroutes.items() if not r.auto}
    return dict(sorted({**complete(vnetworks, vnodes), **explicit}.items()))


def refresh(vroutes: VRoutes, vnetworks: Mapping[str, VNetwork], vnodes: Mapping[str, VNode]) -> VRoutes:
    """The routes left once vnodes, vnetworks or gateway modes went: those naming only what still
    qualifies; if an automatic one fell, all automatic ones are computed again (paths around the gap)."""
    def standing(r: VRoute) -> bool:
        gateway = vnodes.get(r.gateway)
        return (r.srcnet in vnetworks and r.dstnet in vnetworks and gateway is not None and gateway.gateway
                and iface_on(gateway, r.srcnet) is not None)

    kept = {k: r for k, r in vroutes.items() if standing(r)}
    if any(r.auto and k not in kept for k, r in vroutes.items()):
        return with_complete(kept, vnetworks, vnodes.values())
    return kept


def check_vroute(srcnet: object, dstnet: object, gateway: object, vnetworks: Mapping[str, VNetwork],
                 vnodes: Mapping[str, VNode]) -> VRoute:
    """Validate ``vroute_create(srcnet, dstnet, gateway)``; ``gateway``: a vnode name or one of its addresses.

    Raises:
        ValidationError: unknown vnetwork, the same vnetwork twice, unknown gateway, a gateway with no
            interface on ``srcnet`` or not in gateway mode.
    """
    known = ", ".join(sorted(vnetworks)) or "none"
    for field, name in (("srcnet", srcnet), ("dstnet", dstnet)):
        if not isinstance(name, str) or name not in vnetworks:
            raise ValidationError(f"vroute.{field}", name, f"expected a vnetwork name (known: {known})")
    if srcnet == dstnet:
        raise ValidationError("vroute.dstnet", dstnet, "expected a vnetwork other than srcnet")
    node = _gateway_vnode(gateway, vnodes)
    if iface_on(node, str(srcnet)) is None:
        nets = ", ".join(sorted({i.vnetwork for i in node.ifaces})) or "none"
        raise ValidationError("vroute.gateway", gateway, f"vnode {node.name!r} has no interface on vnetwork "
                              f"{srcnet!r} (its vnetworks: {nets}); the gateway must be on srcnet")
    if not node.gateway:
        raise ValidationError("vroute.gateway", gateway, f"vnode {node.name!r} does not forward packets; turn "
                              f"gateway mode on first: vnode_mode({node.name!r}, gateway=True)")
    return VRoute(srcnet=str(srcnet), dstnet=str(dstnet), gateway=node.name)


def _gateway_vnode(gateway: object, vnodes: Mapping[str, VNode]) -> VNode:
    if isinstance(gateway, str) and gateway in vnodes:
        return vnodes[gateway]
    try:
        address = ip_address(str(gateway))
    except ValueError:
        address = None
    for vnode in vnodes.values():
        if any(i.address.ip == address for i in vnode.ifaces):
            return vnode
    raise ValidationError("vroute.gateway", gateway, "expected a vnode name or one of its addresses (known "
                          f"vnodes: {', '.join(sorted(vnodes)) or 'none'})")


def choose(vnetworks: Mapping[str, VNetwork], vnodes: Mapping[str, VNode],
           vroutes: VRoutes) -> dict[str, dict[str, VRoute]]:
    """For each vnode, the vroute it follows to each vnetwork it is not on.

    A vnode follows the routes of the vnetworks it is on, never one through itself; on several,
    the route from the vnetwork nearest the destination wins (then the first by name).
    """
    graph = vnetwork_graph(vnetworks, vnodes.values())
    distance = dict(nx.all_pairs_shortest_path_length(graph))
    by_dst: dict[str, list[VRoute]] = {}
    for route in vroutes.values():
        by_dst.setdefault(route.dstnet, []).append(route)
    chosen: dict[str, dict[str, VRoute]] = {}
    for name, vnode in vnodes.items():
        mine = {i.vnetwork for i in vnode.ifaces}
        table = {}
        for dstnet, candidates in sorted(by_dst.items()):
            usable = [r for r in candidates if r.srcnet in mine and r.gateway != name]
            if dstnet not in mine and usable:
                table[dstnet] = min(usable, key=lambda r: (distance[r.srcnet].get(dstnet, len(graph)), r.srcnet))
        chosen[name] = table
    return chosen


def routing_state(vnode: VNode, table: Mapping[str, VRoute], vnetworks: Mapping[str, VNetwork],
                  vnodes: Mapping[str, VNode]) -> RoutingState:
    """What ``vnode``'s namespace should hold, given the vroutes it follows (from ``choose``)."""
    routes = []
    for dstnet, route in sorted(table.items()):
        via = iface_on(vnodes[route.gateway], route.srcnet)
        device = iface_on(vnode, route.srcnet)
        assert via is not None and device is not None, "choose() and refresh() keep only routes that have both"
        routes.append(Route(destination=vnetworks[dstnet].cidr, via=via.address.ip, device=device.name))
    return RoutingState(forwarding=vnode.gateway, routes=tuple(routes))
