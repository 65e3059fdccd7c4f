"""Pictures of placement: the physical topology, the virtual one, and the mapping, as matplotlib Figures.

Figures are made with ``matplotlib.figure.Figure`` (not pyplot), so nothing stays
registered in pyplot's global state; a notebook displays a returned Figure.
Layouts are seeded: the same graph is drawn the same way every time.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping

import networkx as nx
from matplotlib import colormaps
from matplotlib.figure import Figure

from ..model.placement import Demand, Placement, topology_hosts
from ..model.placement.dot import switch_names
from ..model.placement.problem import format_rate, format_size

__all__ = ["draw_physical", "draw_virtual", "draw_mapping"]

_PNODE, _SWITCH, _VNODE = "#8ecae6", "#d9d9d9", "#ffb703"
_LABELS_UP_TO = 40  # beyond, names would cover the picture
_LISTED = 6  # vnode names listed under a pnode in the mapping


def displayable() -> None:
    """A Figure made without pyplot has no display formatter in IPython until pyplot is imported or
    ``%matplotlib inline`` runs: it showed as ``<Figure size 750x550 with 1 Axes>``. Register the PNG
    one, unless the user has a formatter for figures already."""
    try:
        from IPython import get_ipython
        from IPython.core.pylabtools import select_figure_formats
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    try:
        shell.display_formatter.formatters["image/png"].lookup_by_type(Figure)
    except KeyError:
        select_figure_formats(shell, {"png"})


def png(figure: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes, drawn at its own size (no cropping: what the test compares is what is shown)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _figure(title: str, size: tuple[float, float] = (7.5, 5.5)) -> tuple[Figure, object]:
    displayable()
    fig = Figure(figsize=size, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_axis_off()
    return fig, ax


def _layout(graph: nx.Graph) -> dict[str, tuple[float, float]]:
    if len(graph) < 2:
        return {n: (0.0, 0.0) for n in graph}
    return nx.spring_layout(graph, seed=7, k=2 / len(graph) ** 0.5)  # twice networkx's spacing: boxes, not dots


def _cores(n: int) -> str:
    return f"{n} core{'' if n == 1 else 's'}"


def _pnode_label(name: str, cores: int | None, memory: int | None) -> str:
    facts = [_cores(cores) if cores is not None else None, format_size(memory) if memory else None]
    return "\n".join([name, *(f for f in facts if f)])


def _boxes(ax, graph: nx.Graph, pos, labels: Mapping[str, str], color: str) -> None:
    """Nodes drawn as their label in a box: the box grows with what it says."""
    nx.draw_networkx_labels(graph, pos, labels=dict(labels), font_size=7, ax=ax,
                            bbox={"boxstyle": "round,pad=0.4", "facecolor": color, "edgecolor": "#555555"})


def _draw_graph(ax, graph: nx.Graph, pos, labels: Mapping[str, str], edge_labels: Mapping, edge_colors=None) -> None:
    hosts = topology_hosts(graph)
    switches = [n for n in graph if n not in hosts]
    nx.draw_networkx_edges(graph, pos, ax=ax, width=2, edge_color=edge_colors or "#888888")
    nx.draw_networkx_edge_labels(graph, pos, edge_labels=dict(edge_labels), font_size=7, ax=ax)
    nx.draw_networkx_nodes(graph, pos, nodelist=switches, node_size=300, node_color=_SWITCH, ax=ax)
    nx.draw_networkx_labels(graph, pos, labels={n: n for n in switches}, font_size=7, ax=ax,
                            verticalalignment="bottom")
    _boxes(ax, graph, pos, {n: labels[n] for n in hosts}, _PNODE)


def draw_physical(topology: nx.Graph, title: str = "physical topology") -> Figure:
    """Pnodes (squares: cores, memory) and switches (circles) joined by links (their capacity)."""
    fig, ax = _figure(title)
    nodes = topology.nodes
    labels = {n: _pnode_label(n, nodes[n]["cores"], nodes[n]["memory_bytes"]) if nodes[n]["kind"] == "pnode" else n
              for n in topology}
    edge_labels = {(u, v): format_rate(c) if c else "unlimited" for u, v, c in topology.edges(data="capacity_bps")}
    _draw_graph(ax, topology, _layout(topology), labels, edge_labels)
    return fig


def draw_virtual(demands: Iterable[Demand], limits: Mapping[tuple[str, str], str] | None = None,
                 title: str = "virtual topology") -> Figure:
    """Vnodes (cores, output rate) around one switch per vnetwork, as Distem's ``vnodes_to_dot`` draws them;
    ``limits``: the text written on each (vnode, vnetwork) link, its interface's limits."""
    demands, limits = list(demands), limits or {}
    switches = switch_names(n for d in demands for n in d.vnetworks)
    graph = nx.Graph()
    for vnetwork, switch in switches.items():
        graph.add_node(switch, label=vnetwork)
    for d in demands:
        out = f"\n{format_rate(d.bandwidth)} out" if d.bandwidth else ""
        graph.add_node(d.name, label=f"{d.name}\n{_cores(d.cores)}{out}")
        for vnetwork, _ in d.outputs:
            graph.add_edge(d.name, switches[vnetwork], limits=limits.get((d.name, vnetwork), ""))
    fig, ax = _figure(title)
    pos = _layout(graph)
    named = len(demands) <= _LABELS_UP_TO
    nx.draw_networkx_edges(graph, pos, ax=ax, edge_color="#888888")
    labels = dict(graph.nodes(data="label"))
    _boxes(ax, graph, pos, {s: labels[s] for s in switches.values()}, _SWITCH)  # the label is the hub
    if named:
        nx.draw_networkx_edge_labels(graph, pos, edge_labels={(u, v): t for u, v, t in graph.edges(data="limits") if t},
                                     font_size=6, ax=ax, bbox={"alpha": 0.8, "color": "white"})
        _boxes(ax, graph, pos, {d.name: labels[d.name] for d in demands}, _VNODE)
    else:
        nx.draw_networkx_nodes(graph, pos, nodelist=[d.name for d in demands], node_size=30, node_color=_VNODE, ax=ax)
    return fig


def draw_mapping(placement: Placement, title: str | None = None) -> Figure:
    """The physical topology with each pnode's vnodes and cores used, and each link coloured by how full its
    busier direction is (label: load / capacity)."""
    problem, usage = placement.problem, placement.usage
    topology = problem.topology
    fig, ax = _figure(title or f"mapping ({placement.method}{', optimal' if placement.optimal else ''}): "
                      f"{format_rate(placement.cross_bps)} across pnodes", (8.5, 6))
    by_host: dict[str, list[str]] = {h: [] for h in problem.hosts}
    for vnode, host in sorted(placement.hosts.items()):
        by_host[host].append(vnode)
    labels = {}
    for n in topology:
        if n not in by_host:
            labels[n] = n
            continue
        names = by_host[n][:_LISTED] + ([f"+{len(by_host[n]) - _LISTED} more"] if len(by_host[n]) > _LISTED else [])
        listed = "\n".join(", ".join(names[i:i + 3]) for i in range(0, len(names), 3))
        cap = problem.cores[n]
        labels[n] = f"{n}: {usage.cores[n]}/{cap if cap is not None else '-'} cores\n{listed or '(empty)'}"
    cmap = colormaps["RdYlGn_r"]
    colors, edge_labels = [], {}
    for u, v, cap in topology.edges(data="capacity_bps"):
        load = max(usage.loads[u, v], usage.loads[v, u])
        colors.append(cmap(min(load / cap, 1.0)) if cap else "#888888")
        edge_labels[u, v] = f"{format_rate(load) if load else '0'} / {format_rate(cap) if cap else 'unlimited'}"
    _draw_graph(ax, topology, _layout(topology), labels, edge_labels, colors)
    return fig
