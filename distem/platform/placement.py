"""Placement on a platform (Distem's ``load_physical_topo``, ``run_alevin``, ``vnodes_to_dot``), and the
same without one, for planning on pnodes you do not have.

    p.vnetwork("testnet", "10.144.0.0/22")
    p.vnodes_from_yaml("vnodes_list.yml", image=img, vnetwork="testnet")   # described, not created
    p.load_physical_topo("grid5000.dot")        # optional: default, the pnodes' facts and a switch
    p.place()                                   # each description gains 'host'; nothing deployed yet
    p.deploy()

Vnodes already created count where they are; a description with a 'host' stays
there; the pnodes an earlier ``place()`` chose are chosen again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

import networkx as nx

from ..errors import AlreadyExistsError, ValidationError
from ..model import PlatformModel
from ..model.descriptions import VNodeRequest
from ..model.entities import VNetwork, VNode
from ..model.placement import (DEFAULT_LINK_BPS, Demand, bind_topology, demand_of_request, demand_of_vnode,
                               place_descriptions, request_for_placement, star_topology, vnodes_dot)
from .frames import describe_limits
from .placement_view import PlacementView
from .pool import PnodePool
from .topology_files import Source, load_physical_topo, write_text
from .vnodes import VNodes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Placement", "place", "plot_physical_topology", "plot_virtual_topology"]

Descriptions = Mapping[str, dict[str, Any]]


def _demands(descriptions: Descriptions, vnetworks: Mapping[str, VNetwork] | None = None) -> list[Demand]:
    return [demand_of_request(request_for_placement(name, desc), vnetworks) for name, desc in descriptions.items()]


def _link_limits(vnodes: Iterable[VNode | VNodeRequest]) -> dict[tuple[str, str], str]:
    """The text on each (vnode, vnetwork) link of the virtual topology: its interface's limits."""
    out = {}
    for vnode in vnodes:
        for iface in vnode.ifaces:
            words = [f"{way} {text}" for way, text in (("out", describe_limits(iface.output)),
                                                        ("in", describe_limits(iface.input))) if text]
            if words and iface.vnetwork:
                out[vnode.name, iface.vnetwork] = "\n".join(words)
    return out


def _drawing() -> ModuleType:
    from . import drawing  # imports matplotlib (half a second): only when a picture is asked for

    return drawing


def _vcpus(descriptions: Descriptions) -> dict[str, int]:
    return {name: int(desc["vcpu"].get("corenb", 1)) for name, desc in descriptions.items() if desc.get("vcpu")}


# -- without a platform ------------------------------------------------------------------

def place(descriptions: Descriptions, topology: Source, *, method: str = "auto",
          time_limit: float = 10.0) -> PlacementView:
    """Place described vnodes ({name: Distem description}) on a physical topology, without a platform:
    each description gains the 'host' chosen (a 'host' already given pins the vnode).

    Args:
        descriptions: Distem's vnode descriptions (``load_vnodes_yaml`` makes them from the seed's list).
        topology: a DOT or YAML file, DOT text, YAML data or a networkx graph (see ``load_physical_topo``).
        method, time_limit: see ``distem.model.placement.place``.

    Raises:
        ValidationError: a bad description or topology.
        MappingError: some vnodes fit nowhere (named, with the binding constraint on each pnode).
    """
    return PlacementView(place_descriptions(descriptions, load_physical_topo(topology), method=method,
                                            time_limit=time_limit))


def plot_physical_topology(topology: Source) -> Figure:
    """The physical topology drawn: pnodes with their cores and memory, links with their capacity."""
    return _drawing().draw_physical(load_physical_topo(topology))


def plot_virtual_topology(descriptions: Descriptions) -> Figure:
    """The described vnodes drawn around one switch per vnetwork, with their cores, output rates and link limits."""
    requests = [request_for_placement(name, desc) for name, desc in descriptions.items()]
    return _drawing().draw_virtual(_demands(descriptions), _link_limits(requests))


# -- on a platform -----------------------------------------------------------------------

class Placement:
    """Owns the physical topology loaded, the pnodes the last ``place()`` chose (so that it may choose
    again) and its result (``view``)."""

    def __init__(self, model: PlatformModel, pool: PnodePool, vnodes: VNodes) -> None:
        self.model, self.pool, self.vnodes = model, pool, vnodes
        self.topology: nx.Graph | None = None  # load_physical_topo's; None: from the pnodes' facts
        self.placed: dict[str, str] = {}
        self.view: PlacementView | None = None

    def _pnode_addresses(self) -> dict[str, set[str]]:
        """What each pnode answers to in a topology file: its name, its ssh host, its hostname."""
        out = {}
        for name, pnode in self.model.pnodes.items():
            answers = {name, self.pool.facts(name).get("hostname") or name}
            if pnode.spec == "popen":
                answers |= {"localhost", "127.0.0.1"}
            elif pnode.spec.startswith("ssh="):
                answers.add(pnode.spec[4:].split("//", 1)[0].rsplit("@", 1)[-1])
            out[name] = answers
        return out

    def load_physical_topo(self, source: Source) -> nx.Graph:
        """Distem's ``load_physical_topo``: the topology ``place()`` uses from now on. Its pnodes are
        matched to the platform's by ``ip`` (or name): the pnode's name, ssh host, or hostname
        ("localhost" and "127.0.0.1" for this machine). Cores or memory left out are not constrained.

        Raises:
            ValidationError: unreadable, bad attributes, or a topology pnode that is not a platform pnode.

        Example::

            p.load_physical_topo("grid5000.dot")
        """
        self.topology = bind_topology(load_physical_topo(source), self._pnode_addresses())
        return self.topology

    @property
    def physical_topology(self) -> nx.Graph:
        """The topology ``place()`` uses: the one loaded, or the pnodes (their cores and memory) on one
        switch with 1 Gbit/s links."""
        if self.topology is not None:
            return self.topology
        return star_topology({name: (self.pool.facts(name)["cores"], self.pool.facts(name).get("memory") or None)
                              for name in self.pool.sessions}, DEFAULT_LINK_BPS)

    def place(self, descriptions: Descriptions | None = None, *, topology: Source | None = None,
              method: str = "auto", time_limit: float = 10.0) -> PlacementView:
        """Choose a pnode for every vnode described with ``p.vnode(...)`` (and for ``descriptions``, if given)
        and every vnode created without a 'host' and not started yet, within the cores and memory of the
        pnodes and the capacity of the links; the vnodes started (or created with a 'host') stay where
        they are and count. Each description gains 'host'; ``deploy()`` or ``vnode_create`` then follows
        it; a created vnode moves to its pnode (``.moved``) and is made there at its start. Nothing is
        created here.

        Args:
            descriptions: more vnodes, {name: Distem description} (updated in place with 'host').
            topology: instead of ``physical_topology`` (see ``load_physical_topo``).
            method: "auto", "exact" or "greedy" (see ``distem.model.placement.place``).
            time_limit: the exact solver's budget, in seconds.

        Raises:
            ValidationError: a bad description or topology.
            MappingError: some vnodes fit nowhere: named, with the binding constraint on each pnode.
        """
        topo = self.physical_topology if topology is None else bind_topology(load_physical_topo(topology),
                                                                             self._pnode_addresses())
        described = self.vnodes.described()
        for name, desc in (descriptions or {}).items():
            if name in described and described[name] is not desc:
                raise AlreadyExistsError("vnode", name)
            described[name] = desc
        self.placed = {n: h for n, h in self.placed.items() if n in described}
        ours = {n: described[n].pop("host") for n, h in self.placed.items() if described[n].get("host") == h}
        pinned = {n for n, d in described.items() if d.get("host") is not None}
        provisional = self.model.provisional
        made = {n: (demand_of_vnode(v), v.host) for n, v in self.model.vnodes.items() if n not in provisional}
        movable = {n: demand_of_vnode(self.model.vnodes[n]) for n in sorted(provisional)}
        try:
            placement = place_descriptions(described, topo, fixed=made, movable=movable,
                                           vnetworks=self.model.vnetworks, method=method, time_limit=time_limit)
        except Exception:
            for name, host in ours.items():
                described[name]["host"] = host
            raise
        moved = {}
        for name in movable:
            before, after = self.model.vnodes[name].host, placement.hosts[name]
            if after != before:
                self.model.move_vnode(name, after)
                moved[name] = (before, after)
        self.placed = {n: placement.hosts[n] for n in described if n not in pinned}
        self.view = PlacementView(placement, made, moved)
        return self.view

    def check_new(self, descriptions: Descriptions) -> None:
        for name in descriptions:
            if name in self.model.vnodes or name in self.vnodes.pending:
                raise AlreadyExistsError("vnode", name)

    def _all_demands(self) -> list[Demand]:
        return [demand_of_vnode(v) for v in self.model.vnodes.values()] + _demands(self.vnodes.described(),
                                                                                     self.model.vnetworks)

    def vnodes_to_dot(self, path: str | os.PathLike[str]) -> None:
        """Distem's ``vnodes_to_dot``: the vnodes (created and described) as a DOT file: ``cpu`` their vcpu
        cores (0 without), one switch per vnetwork, links with their output rate in bit/s.

        Example::

            p.vnodes_to_dot("vnodes.dot")
        """
        vcpus = {n: v.vcpu.cores for n, v in self.model.vnodes.items() if v.vcpu} | _vcpus(self.vnodes.described())
        write_text(path, vnodes_dot(self._all_demands(), vcpus))

    def plot_physical_topology(self) -> Figure:
        """``physical_topology`` drawn: pnodes with their cores and memory, links with their capacity."""
        return _drawing().draw_physical(self.physical_topology)

    def plot_virtual_topology(self) -> Figure:
        """The vnodes (created and described) around one switch per vnetwork, with cores, output rates and each
        link's limits."""
        described = [request_for_placement(n, d) for n, d in self.vnodes.described().items()]
        return _drawing().draw_virtual(self._all_demands(), _link_limits([*self.model.vnodes.values(), *described]))

    def plot_mapping(self) -> Figure:
        """The last ``place()``'s mapping drawn on the physical topology."""
        if self.view is None:
            raise ValidationError("placement", None, "nothing placed yet; call place() first")
        return self.view.plot()
