"""The physical topology: pnodes (cores, memory) and switches joined by links of a given capacity.

A topology is a networkx ``Graph`` whose attributes are validated and parsed once, here:

    node  kind       "pnode" (can host vnodes) or "switch"
          cores      int, or None: not constrained          (Distem's DOT: ``cpu``)
          memory_bytes  bytes, or None: not constrained        (input: ``memory``, a size: "64G", bare MB)
          ip         the pnode's address, or None           (Distem's DOT: ``ip``)
    edge  capacity_bps  bit/s in each direction (links are full duplex), or None: not constrained
                                                             (Distem's DOT: ``bandwidth``)

Inputs may use Distem's names (``type``, ``cpu``, ``bandwidth``) or these. A node
is a pnode when its ``type``/``kind`` says "host"/"pnode", or, with neither, when
it has an ``ip``; anything else is a switch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import networkx as nx

from ...errors import ValidationError
from ..units import parse_rate, parse_size

__all__ = ["DEFAULT_LINK_BPS", "physical_topology", "star_topology", "topology_from_data", "topology_hosts",
           "bind_topology"]

DEFAULT_LINK_BPS = 10**9  # what Distem's own tests give a pnode's link: 1 Gbit/s
_PNODE_KINDS, _SWITCH_KINDS = {"host", "pnode"}, {"switch", "router"}
# Graphviz's presentation attributes are accepted and ignored; anything else unknown is likely a typo.
_DRAWING = {"label", "xlabel", "pos", "shape", "color", "fillcolor", "style", "fontname", "fontsize", "fontcolor",
            "width", "height", "penwidth", "tooltip", "weight", "len"}
_NODE_KEYS = {"kind", "type", "cores", "cpu", "memory", "memory_bytes", "ip"} | _DRAWING
_EDGE_KEYS = {"capacity_bps", "bandwidth"} | _DRAWING


def _first(attrs: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        if attrs.get(key) is not None:
            return attrs[key]
    return None


def _cores(field: str, value: object) -> int | None:
    if value is None:
        return None
    try:
        cores = int(str(value))
    except ValueError:
        cores = -1
    if isinstance(value, bool) or cores < 0 or str(cores) != str(value).strip():
        raise ValidationError(field, value, "expected a whole number of cores (0 or more)")
    return cores


def _check_attributes(field: str, attrs: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(attrs) - allowed)
    if unknown:
        raise ValidationError(field, unknown[0], f"unknown attribute; allowed: {', '.join(sorted(allowed - _DRAWING))} "
                              "(and Graphviz's drawing attributes)")


def _node(name: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    _check_attributes(f"topology node {name!r}", attrs, _NODE_KEYS)
    kind = _first(attrs, "kind", "type")
    ip = attrs.get("ip")
    if kind is None:
        kind = "pnode" if ip else "switch"
    elif str(kind).lower() in _PNODE_KINDS:
        kind = "pnode"
    elif str(kind).lower() in _SWITCH_KINDS:
        kind = "switch"
    else:
        raise ValidationError(f"topology node {name!r} type", kind, "expected 'host' (a pnode) or 'switch'")
    memory = attrs.get("memory_bytes")
    if memory is None and attrs.get("memory") is not None:
        memory = parse_size(attrs["memory"], f"topology node {name!r} memory")
    elif memory is not None and (isinstance(memory, bool) or not isinstance(memory, int) or memory < 0):
        raise ValidationError(f"topology node {name!r} memory_bytes", memory, "expected a number of bytes")
    pnode = kind == "pnode"
    return {"kind": kind, "ip": None if ip is None else str(ip), "memory_bytes": memory if pnode else None,
            "cores": _cores(f"topology node {name!r} cpu", _first(attrs, "cores", "cpu")) if pnode else None}


def _edge(u: str, v: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    _check_attributes(f"topology link {u}--{v}", attrs, _EDGE_KEYS)
    rate = _first(attrs, "capacity_bps", "bandwidth")
    return {"capacity_bps": None if rate is None else parse_rate(rate, f"topology link {u}--{v} bandwidth")}


def physical_topology(graph: nx.Graph[str]) -> nx.Graph[str]:
    """A validated copy of ``graph``, attributes parsed (see the module doc), nodes and links in name order.

    Raises:
        ValidationError: a bad attribute, parallel links, no pnode, or pnodes not all connected.
    """
    if graph.is_multigraph():
        raise ValidationError("physical topology", "parallel links",
                              "give one link per pair of nodes, with their total bandwidth")
    topo: nx.Graph[str] = nx.Graph()
    for name in sorted(graph.nodes, key=str):
        if not isinstance(name, str) or not name:
            raise ValidationError("topology node name", name, "expected a non-empty string")
        topo.add_node(name, **_node(name, graph.nodes[name]))
    for u, v in sorted((tuple(sorted(e)) for e in graph.edges), key=lambda e: (e[0], e[1])):
        if u == v:
            raise ValidationError(f"topology link {u}--{v}", "a loop", "a link joins two different nodes")
        topo.add_edge(u, v, **_edge(u, v, graph.edges[u, v]))
    hosts = topology_hosts(topo)
    if not hosts:
        raise ValidationError("physical topology", sorted(topo.nodes)[:5], "no pnode: give hosts an 'ip' or type=host")
    reach = nx.node_connected_component(topo, hosts[0])
    apart = [h for h in hosts if h not in reach]
    if apart:
        raise ValidationError("physical topology", apart, f"these pnodes have no path to {hosts[0]}; link them")
    return topo


def topology_hosts(topology: nx.Graph[str]) -> list[str]:
    """The pnodes of a topology, in name order."""
    return sorted(n for n, data in topology.nodes(data=True) if data.get("kind") == "pnode")


def star_topology(pnodes: Mapping[str, tuple[int | None, int | None]], link_bps: int | None = DEFAULT_LINK_BPS,
                  switch: str = "switch") -> nx.Graph[str]:
    """Pnodes ``{name: (cores, memory bytes)}`` joined by one switch (no switch for a single pnode)."""
    graph: nx.Graph[str] = nx.Graph()
    for name, (cores, memory) in pnodes.items():
        graph.add_node(name, kind="pnode", cores=cores, memory_bytes=memory)
    if len(pnodes) > 1:
        if switch in pnodes:
            raise ValidationError("switch name", switch, "a pnode has this name; choose another")
        graph.add_node(switch, kind="switch")
        graph.add_edges_from(((name, switch) for name in pnodes), capacity_bps=link_bps)
    return physical_topology(graph)


def topology_from_data(data: object, field: str = "physical topology") -> nx.Graph[str]:
    """The YAML form:

        pnodes:   [{name: p1, ip: 10.0.0.1, cpu: 16, memory: 64G}, ...]
        switches: [sw1]                                  # optional
        links:    [{source: p1, target: sw1, bandwidth: 10gbps}, ...]
    """
    if not isinstance(data, Mapping):
        raise ValidationError(field, data, "expected a mapping with 'pnodes', 'switches' and 'links'")
    unknown = sorted(set(data) - {"pnodes", "switches", "links"})
    if unknown:
        raise ValidationError(field, unknown[0], "unknown key; allowed: pnodes, switches, links")
    graph: nx.Graph[str] = nx.Graph()
    for i, entry in enumerate(_list(f"{field}.pnodes", data.get("pnodes"))):
        if not isinstance(entry, Mapping) or "name" not in entry:
            raise ValidationError(f"{field}.pnodes[{i}]", entry, "expected {name: ..., ip: ..., cpu: N, memory: SIZE}")
        graph.add_node(str(entry["name"]), **{"kind": "pnode", **{k: v for k, v in entry.items() if k != "name"}})
    for name in _list(f"{field}.switches", data.get("switches")):
        graph.add_node(str(name), kind="switch")
    for i, entry in enumerate(_list(f"{field}.links", data.get("links"))):
        if not isinstance(entry, Mapping) or not {"source", "target"} <= set(entry):
            raise ValidationError(f"{field}.links[{i}]", entry, "expected {source: A, target: B, bandwidth: RATE}")
        ends = (str(entry["source"]), str(entry["target"]))
        missing = [e for e in ends if e not in graph]
        if missing:
            raise ValidationError(f"{field}.links[{i}]", missing[0], "no pnode or switch of this name")
        graph.add_edge(*ends, **{k: v for k, v in entry.items() if k not in ("source", "target")})
    return physical_topology(graph)


def _list(field: str, value: object) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValidationError(field, value, "expected a list")
    return list(value)


def bind_topology(topology: nx.Graph[str], addresses: Mapping[str, Iterable[str]]) -> nx.Graph[str]:
    """Rename each pnode of ``topology`` to the platform pnode it is, matched by its ``ip`` or its name
    against ``addresses`` ({pnode name: names and addresses it answers to}).

    Raises:
        ValidationError: a topology pnode matches no platform pnode, or two match the same one.
    """
    known = {a: name for name, answers in addresses.items() for a in {name, *answers}}
    rename: dict[str, str] = {}
    for node in topology_hosts(topology):
        ip = topology.nodes[node]["ip"]
        pnode = known.get(ip) if ip else None
        pnode = pnode or known.get(node)
        if pnode is None:
            raise ValidationError(f"topology node {node!r} ip", ip, "matches no pnode of the platform (known: "
                                  + ", ".join(f"{n} ({', '.join(sorted(set(a) - {n})) or '-'})"
                                              for n, a in addresses.items()) + ")")
        if pnode in rename.values():
            raise ValidationError(f"topology node {node!r}", ip or node, f"pnode {pnode} is already another node")
        rename[node] = pnode
    clash = sorted(n for n in topology if n not in rename and n in rename.values())
    if clash:
        raise ValidationError("topology switch", clash[0], "has the name of a pnode; rename it")
    return physical_topology(nx.relabel_nodes(topology, rename, copy=True))
