"""Distem's DOT files, both ways, as text (pydot parses and writes; no file is touched here).

Physical topology in (what Distem's ``load_physical_topo`` reads, made by its Execo script):

    graph G {
      pnode1 [ip="172.16.0.1", cpu=16, type=host];
      physwitch [cpu=0, type=switch];
      pnode1 -- physwitch [bandwidth=1000000000];    // bit/s, or "10gbps"
    }

Virtual topology out (what Distem's ``vnodes_to_dot`` writes): one node per vnode
with ``cpu`` (its vcpu cores, 0 without a vcpu, as Distem writes) and ``type=host``,
one switch per vnetwork (``vs`` when there is one, as Distem names it,
``vs_NAME`` otherwise), and a link per interface with its output rate in bit/s.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterable, Mapping

import networkx as nx
import pydot

from ...errors import ValidationError
from .demand import Demand
from .topology import physical_topology

__all__ = ["topology_from_dot", "vnodes_dot", "switch_names"]

_DEFAULTS = {"node", "edge", "graph"}  # pydot lists DOT's default-attribute statements as nodes


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]
    return text.replace('\\"', '"')


def topology_from_dot(text: str, field: str = "physical topology") -> nx.Graph[str]:
    """Parse Distem's physical topology DOT (see the module doc) into a validated topology.

    Raises:
        ValidationError: not DOT, or a bad attribute (see ``physical_topology``).
    """
    printed = io.StringIO()
    try:
        # pydot's parser still calls pyparsing's deprecated names, and prints its syntax errors
        with warnings.catch_warnings(), contextlib.redirect_stdout(printed):
            warnings.simplefilter("ignore", DeprecationWarning)
            graphs = pydot.graph_from_dot_data(text)
    except Exception as exc:
        raise ValidationError(field, text[:60], f"not valid DOT ({exc})") from None
    if not graphs:
        where = " ".join(printed.getvalue().split()) or "expected 'graph G { a -- b [bandwidth=...]; }'"
        raise ValidationError(field, text[:60], f"not valid DOT: {where} (names with '-' or '.' need quotes)")
    dot = graphs[0]
    graph: nx.Graph[str] = nx.Graph()
    for node in dot.get_nodes():
        name = _unquote(node.get_name())
        if name not in _DEFAULTS:
            graph.add_node(name, **{k: _unquote(str(v)) for k, v in node.get_attributes().items()})
    for edge in dot.get_edges():
        ends = [_unquote(str(e)) for e in (edge.get_source(), edge.get_destination())]
        for end in ends:
            if end not in graph:
                graph.add_node(end)  # named only by a link: a switch
        graph.add_edge(*ends, **{k: _unquote(str(v)) for k, v in edge.get_attributes().items()})
    return physical_topology(graph)


def switch_names(vnetworks: Iterable[str]) -> dict[str, str]:
    """The virtual switch of each vnetwork: "vs" when there is only one (Distem's name), "vs_NAME" otherwise."""
    names = sorted(set(vnetworks))
    return {names[0]: "vs"} if len(names) == 1 else {n: f"vs_{n}" for n in names}


def vnodes_dot(demands: Iterable[Demand], vcpus: Mapping[str, int] | None = None) -> str:
    """Distem's virtual topology DOT for these vnodes. ``vcpus``: the cores of the vnodes that have a
    vcpu (written as ``cpu``; the others get 0, as Distem writes them)."""
    demands = list(demands)
    switches = switch_names(n for d in demands for n, _ in d.outputs)
    dot = pydot.Dot("G", graph_type="graph")
    for switch in switches.values():
        dot.add_node(pydot.Node(switch, cpu=0, type="switch"))
    for d in demands:
        dot.add_node(pydot.Node(d.name, cpu=(vcpus or {}).get(d.name, 0), type="host"))
        for vnetwork, rate in d.outputs:
            dot.add_edge(pydot.Edge(d.name, switches[vnetwork], bandwidth=rate))
    return dot.to_string()
