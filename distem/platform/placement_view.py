"""What ``place()`` returns: the mapping, as DataFrames and a picture, before anything is deployed.

    vnodes   index vnode: host, cores, memory_mib, output_mbps (sum of its output rates), pinned, created
             (made on a pnode already), moved_from (the pnode a vnode created earlier was moved from)
    pnodes   index pnode: vnodes, cores, cores_max, memory_mib, memory_max_mib (max: None = not constrained)
    links    index (from, to), one row per direction of each link: load_mbps, capacity_mbps, utilization
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from typing import TYPE_CHECKING

import pandas as pd

from ..model.placement import Placement
from ..model.placement.problem import format_rate
from . import html

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PlacementView"]


def _mib(n: int | None) -> float | None:
    return None if n is None else round(n / 2**20, 1)


class PlacementView:
    """``moved``: the vnodes created earlier that this placement moved, ``{vnode: (from, to)}``."""

    def __init__(self, placement: Placement, already_created: Iterable[str] = (),
                 moved: Mapping[str, tuple[str, str]] | None = None) -> None:
        self.placement = placement
        self._created = set(already_created)
        self.moved = dict(moved or {})

    @property
    def hosts(self) -> dict[str, str]:
        """``{vnode: pnode}`` for every vnode, those already created included."""
        return dict(self.placement.hosts)

    @property
    def vnodes(self) -> pd.DataFrame:
        problem = self.placement.problem
        rows = [{"vnode": name, "host": self.placement.hosts[name], "cores": d.cores, "memory_mib": _mib(d.memory),
                 "output_mbps": d.bandwidth / 1e6, "pinned": name in problem.pinned, "created": name in self._created,
                 "moved_from": self.moved.get(name, ("",))[0]}
                for name, d in problem.demands.items()]
        columns = ["host", "cores", "memory_mib", "output_mbps", "pinned", "created", "moved_from"]
        return pd.DataFrame(rows, columns=["vnode", *columns]).set_index("vnode")

    @property
    def pnodes(self) -> pd.DataFrame:
        problem, usage = self.placement.problem, self.placement.usage
        count = {h: 0 for h in problem.hosts}
        for host in self.placement.hosts.values():
            count[host] += 1
        rows = [{"pnode": h, "vnodes": count[h], "cores": usage.cores[h], "cores_max": problem.cores[h],
                 "memory_mib": _mib(usage.memory[h]), "memory_max_mib": _mib(problem.memory[h])}
                for h in problem.hosts]
        return pd.DataFrame(rows).set_index("pnode")

    @property
    def links(self) -> pd.DataFrame:
        problem, usage = self.placement.problem, self.placement.usage
        rows = [{"from": a, "to": b, "load_mbps": usage.loads[a, b] / 1e6,
                 "capacity_mbps": None if cap is None else cap / 1e6,
                 "utilization": None if not cap else round(usage.loads[a, b] / cap, 3)}
                for (a, b), cap in sorted(problem.capacity.items())]
        return pd.DataFrame(rows, columns=["from", "to", "load_mbps", "capacity_mbps", "utilization"]
                            ).set_index(["from", "to"])

    def plot(self, title: str | None = None) -> Figure:
        """The mapping drawn on the physical topology."""
        from . import drawing  # imports matplotlib: only when a picture is asked for

        return drawing.draw_mapping(self.placement, title)

    def __repr__(self) -> str:
        pl = self.placement
        return (f"<placement of {len(pl.hosts)} vnodes on {pl.pnodes_used} of {len(pl.problem.hosts)} pnode(s): "
                f"{format_rate(pl.cross_bps)} across pnodes, {pl.method}{' (optimal)' if pl.optimal else ''}"
                f"{f', {len(self.moved)} moved' if self.moved else ''}>")

    def _repr_html_(self) -> str:
        return html.placement_html(repr(self), self.vnodes, self.pnodes, self.links)

    def __getitem__(self, vnode: str) -> str:
        return self.placement.hosts[vnode]

