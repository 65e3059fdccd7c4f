"""The pairwise latency matrix: Distem's set_peers_latencies, ``p.latencies`` as a DataFrame,
measuring every pair, requested vs measured, heatmaps. The tc layout is in plan/matrix.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..model import FROZEN, RUNNING, VNode
from ..model.matrix import Cells, cells_from_frame, merge, parse_matrix
from ..plan.matrix import DeviceMatrix, destinations, vnode_matrix_ops
from ..plan.ops import Op

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .platform import Platform

    _Base = Platform
else:
    _Base = object


class MatrixCalls(_Base):
    # -- setting ---------------------------------------------------------------------
    def set_peers_latencies(self, vnodes: Sequence[str], matrix: Sequence[Sequence[float]]) -> None:
        """``matrix[i][j]``: one-way delay in ms from ``vnodes[i]`` to ``vnodes[j]`` (0: none), so that
        RTT(i, j) = M[i][j] + M[j][i]. Other pairs keep theirs; only changed cells are sent.

        Raises:
            ValidationError: not N x N, unknown names, a value that is not a number >= 0.
        """
        self._set_cells(parse_matrix(vnodes, matrix, list(self.model.vnodes)))

    @property
    def latencies(self) -> pd.DataFrame:
        """The requested one-way delays (ms) between every pair of vnodes; set it with a DataFrame."""
        names = list(self.model.vnodes)
        position = {name: i for i, name in enumerate(names)}
        values = np.zeros((len(names), len(names)))  # filled as an array: .loc per cell takes ~1 s at N = 100
        for (src, dst), us in self.model.latencies.items():
            values[position[src], position[dst]] = us / 1000
        return pd.DataFrame(values, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))

    @latencies.setter
    def latencies(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError("latencies", type(frame).__name__, "expected a DataFrame indexed by vnode names")
        self._set_cells(cells_from_frame(frame, list(self.model.vnodes)))

    def _set_cells(self, cells: Cells) -> None:
        self._check_open()
        wanted = merge(self.model.latencies, cells)
        for src in {s for s, _ in cells}:
            self._check_matrix_backend(src, any(wanted.get((src, d)) for _, d in cells))
        self._apply_cells(wanted)

    def _check_matrix_backend(self, source: str, has_cells: bool) -> None:
        """Cells from a vnode need sch_netem or a working userspace delay line on its pnode."""
        vnode = self.model.vnode(source)
        reason = self.sessions[vnode.host].facts.get("delay_line_unavailable")
        if has_cells and self.backend(vnode.host) != "netem" and reason:
            raise ValidationError(f"latencies from {source}", "(matrix)", f"pnode {vnode.host}'s kernel has no "
                                  f"sch_netem and its userspace delay line cannot run: {reason}")

    def _apply_cells(self, wanted: Cells) -> None:
        tables = destinations(self.model.vnodes, wanted)
        calls: dict[str, list[dict[str, Any]]] = {}
        applied: dict[tuple[str, int], DeviceMatrix] = {}
        for name, status in self.model.status.items():
            if status in (RUNNING, FROZEN):
                ops, states = self._matrix_ops(self.model.vnode(name), tables, fresh=False, limits_changed=False)
                if ops:
                    calls.setdefault(self.model.vnode(name).host, []).extend(op.to_wire() for op in ops)
                    applied.update(states)
        total = sum(len(ops) for ops in calls.values())
        self._on_pnodes({p: ("apply", {"ops": ops}) for p, ops in calls.items()}, "Applying latencies", total)
        self.model.latencies = wanted
        self._matrix_applied.update(applied)

    def _matrix_ops(self, vnode: VNode, tables: Mapping[tuple[str, int], Mapping[str, int]], fresh: bool,
                    limits_changed: bool, shaped: bool = False) -> tuple[list[Op], dict[tuple[str, int], DeviceMatrix]]:
        return vnode_matrix_ops(self.id, vnode, self.backend(vnode.host), self._matrix_applied, tables, fresh,
                                limits_changed, shaped)

    # -- measuring -------------------------------------------------------------------
    def compare_latencies(self, vnodes: Sequence[str] | None = None, count: int = 10,
                          interval_ms: int = 20, parallel: int | None = None) -> pd.DataFrame:
        """Requested vs measured RTT for every ordered pair: one row per (from, to) with the
        requested RTT (M[i][j] + M[j][i] plus the RTT measured before any matrix is not known,
        so the measured baseline is not subtracted), the measured median and the error."""
        measured = self.measure_latencies(vnodes, count=count, interval_ms=interval_ms, parallel=parallel)
        asked = self.latencies
        rows = []
        for src in measured.index:
            for dst in measured.columns:
                if src != dst:
                    want = asked.loc[src, dst] + asked.loc[dst, src]
                    got = measured.loc[src, dst]
                    rows.append({"from": src, "to": dst, "requested_rtt_ms": want, "measured_rtt_ms": got,
                                 "error_ms": got - want, "error_pct": 100 * (got - want) / want if want else float("nan")})
        return pd.DataFrame(rows).set_index(["from", "to"])

    def plot_latencies(self, measured: pd.DataFrame | None = None) -> Figure:
        """Heatmaps of the requested RTT matrix and, given ``measure_latencies()``'s frame, the measured one."""
        import matplotlib.pyplot as plt

        asked = self.latencies
        rtt = asked + asked.T
        panels = [("requested RTT (ms)", rtt)] + ([("measured RTT (ms)", measured)] if measured is not None else [])
        fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.5), squeeze=False)
        top = max(float(frame.max().max()) for _, frame in panels) or 1.0
        for ax, (title, frame) in zip(axes[0], panels):
            image = ax.imshow(frame.to_numpy(dtype=float), vmin=0, vmax=top, cmap="viridis")
            ax.set_title(title)
            names = list(frame.index)
            step = max(1, len(names) // 20)  # readable labels at N = 100
            ax.set_xticks(range(0, len(names), step), names[::step], rotation=90)
            ax.set_yticks(range(0, len(names), step), names[::step])
            fig.colorbar(image, ax=ax)
        fig.tight_layout()
        return fig
