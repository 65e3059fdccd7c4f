"""The pairwise latency matrix: Distem's set_peers_latencies, ``p.latencies`` as a DataFrame,
requested vs measured, heatmaps. The tc layout is in plan/matrix.py."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..model import FROZEN, RUNNING, PlatformModel, VNode
from ..model.matrix import Cells, cells_from_frame, parse_matrix
from ..plan.matrix import DeviceMatrix, changed_tables, destinations, vnode_matrix_ops
from ..plan.ops import Op
from .measure import Measures
from .pool import PnodePool

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Tables = Mapping[tuple[str, int], Mapping[str, int]]  # (vnode, interface index) -> destination address -> us


def _iface_delays_ms(vnode: VNode) -> tuple[float, float]:
    """The (output, input) delays of the vnode's first interface, the one the matrix's pairs are measured on."""
    if not vnode.ifaces:
        return 0.0, 0.0
    iface = vnode.ifaces[0]
    return tuple(lim.delay_us / 1000 if lim else 0.0 for lim in (iface.output, iface.input))  # type: ignore[return-value]


class Matrix:
    """Owns ``applied``: what each vnode interface's device holds of the matrix (plan/matrix.py's DeviceMatrix)."""

    def __init__(self, model: PlatformModel, pool: PnodePool, measures: Measures) -> None:
        self.model, self.pool, self.measures = model, pool, measures
        self.applied: dict[tuple[str, int], DeviceMatrix] = {}

    # -- setting ---------------------------------------------------------------------
    def set_peers_latencies(self, vnodes: Sequence[str], matrix: Sequence[Sequence[float]]) -> None:
        """``matrix[i][j]``: one-way delay in ms from ``vnodes[i]`` to ``vnodes[j]`` (0: none), so that
        RTT(i, j) = M[i][j] + M[j][i]. Other pairs keep theirs; only changed cells are sent.

        Raises:
            ValidationError: not N x N, unknown names, a value that is not a number >= 0.
        """
        self.set_cells(parse_matrix(vnodes, matrix, list(self.model.vnodes)))

    @property
    def frame(self) -> pd.DataFrame:
        """The requested one-way delays (ms) between every pair of vnodes."""
        names = list(self.model.vnodes)
        position = {name: i for i, name in enumerate(names)}
        values = np.zeros((len(names), len(names)))  # filled as an array: .loc per cell takes ~1 s at N = 100
        for (src, dst), us in self.model.latencies.items():
            values[position[src], position[dst]] = us / 1000
        return pd.DataFrame(values, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))

    def set_frame(self, frame: pd.DataFrame) -> None:
        if not isinstance(frame, pd.DataFrame):
            raise ValidationError("latencies", type(frame).__name__, "expected a DataFrame indexed by vnode names")
        self.set_cells(cells_from_frame(frame, list(self.model.vnodes)))

    def set_cells(self, cells: Cells) -> None:
        for src in {s for (s, _), us in cells.items() if us}:
            self.check_backend(src)
        self.apply_cells(cells)

    def check_backend(self, source: str) -> None:
        """Cells from a vnode need sch_netem or a working userspace delay line on its pnode."""
        vnode = self.model.vnode(source)
        reason = self.pool.facts(vnode.host).get("delay_line_unavailable")
        if self.pool.backend(vnode.host) != "netem" and reason:
            raise ValidationError(f"latencies from {source}", "(matrix)", f"pnode {vnode.host}'s kernel has no "
                                  f"sch_netem and its userspace delay line cannot run: {reason}")

    def apply_cells(self, cells: Cells) -> None:
        """These cells (0 clears one) on the running vnodes they come from; then the model says so.
        Only the sources of cells that change are planned: an event engine sends one cell at a time."""
        changed = {pair: us for pair, us in cells.items() if self.model.latencies.get(pair, 0) != us}
        self._send({src for src, _ in changed}, changed_tables(self.model.vnodes, self.applied, changed))
        self.model.update_latencies(changed)

    def refresh(self, vnode: str) -> None:
        """The matrix again from every vnode whose cells involve ``vnode``: its interfaces changed, so the
        addresses its cells go to and come from did."""
        self.applied = {key: state for key, state in self.applied.items()
                        if key[0] != vnode or key[1] in {i.slot for i in self.model.vnode(vnode).ifaces}}
        sources = {src for src, dst in self.model.latencies if vnode in (src, dst)}
        self._send(sources, destinations(self.model.vnodes, self.model.latencies, sources))

    def _send(self, sources: set[str], tables: Tables) -> None:
        """Each running source's interfaces to hold ``tables`` (what they do not hold of it is sent)."""
        calls: dict[str, list[dict[str, Any]]] = {}
        applied: dict[tuple[str, int], DeviceMatrix] = {}
        for name, status in self.model.status.items():  # not sources: each batch in the vnodes' order
            if name in sources and status in (RUNNING, FROZEN):
                ops, states = self._ops(self.model.vnode(name), tables, fresh=False, limits_changed=False)
                if ops:
                    calls.setdefault(self.model.vnode(name).host, []).extend(op.to_wire() for op in ops)
                    applied.update(states)
        self.pool.apply(calls, "Applying latencies")
        self.applied.update(applied)

    def _ops(self, vnode: VNode, tables: Tables, fresh: bool, limits_changed: bool,
             shaped: bool = False) -> tuple[list[Op], dict[tuple[str, int], DeviceMatrix]]:
        return vnode_matrix_ops(self.model.platform_id, vnode, self.pool.backend(vnode.host), self.applied, tables,
                                fresh, limits_changed, shaped)

    def with_shaping(self, vnode: VNode, tables: Tables, fresh: bool, carrying: frozenset[int]) -> list[Op]:
        """The matrix's part of ``vnode``'s shaping (after plan/shaping.py's trees), recorded as applied."""
        if self.pool.backend(vnode.host) == "userspace":  # the delay line got the whole table with the interface
            self.applied.update({(vnode.name, i.slot): DeviceMatrix(delays=dict(tables.get((vnode.name, i.slot), {})))
                                 for i in vnode.ifaces})
            return []
        if not carrying and not any(key[0] == vnode.name for key in self.applied):
            return []
        changes, states = self._ops(vnode, tables, fresh, limits_changed=not fresh, shaped=True)
        self.applied.update(states)
        return changes

    def forget(self, names: Sequence[str]) -> None:
        """Removed vnodes hold nothing; the others stop delaying them."""
        for key in [k for k in self.applied if k[0] in names]:
            del self.applied[key]
        stale = {pair: 0 for pair in self.model.latencies if pair[0] in names or pair[1] in names}
        if stale:
            self.apply_cells(stale)

    # -- measuring -------------------------------------------------------------------
    def compare_latencies(self, vnodes: Sequence[str] | None = None, count: int = 10, interval_ms: int = 20,
                          parallel: int | None = None, *, rel: float = 0.05, slack_ms: float = 0.5,
                          again: bool = True) -> pd.DataFrame:
        """Requested vs measured RTT for every ordered pair (from, to): the requested RTT is the matrix's
        M[i][j] + M[j][i] plus the delays set on both vnodes' first interfaces (output and input, both
        ways); the measured one is fping's median. ``ok``: the error within ``rel`` of the requested
        RTT, or ``slack_ms`` (the unshaped path's own RTT is not subtracted). With ``again``, the pairs
        not ok are measured once more and their second measurement kept (``measured_twice``).
        ``.attrs['pnode_busy']``: each pnode's CPU busy fraction while measuring (a FidelityWarning
        when over 90%: a saturated pnode's errors are its own, not the platform's)."""
        measured = self.measures.measure_latencies(vnodes, count=count, interval_ms=interval_ms, parallel=parallel)
        frame = self._compared(measured, rel, slack_ms)
        busy = dict(measured.attrs["pnode_busy"])
        bad = frame.index[~frame.ok]
        if again and len(bad):
            second = self.measures.measure_latencies(sorted({n for pair in bad for n in pair}), count=count,
                                                     interval_ms=interval_ms, parallel=parallel)
            busy = {p: max(b, second.attrs["pnode_busy"].get(p, 0.0)) for p, b in busy.items()}
            redone = self._compared(second, rel, slack_ms).loc[bad]
            frame.loc[bad, redone.columns] = redone
            frame.loc[bad, "measured_twice"] = True
        frame.attrs["pnode_busy"] = busy
        return frame

    def requested_rtt(self, names: Sequence[str] | None = None) -> pd.DataFrame:
        """The RTT asked between every pair (ms): the matrix's M[i][j] + M[j][i] plus the delays set on both
        vnodes' first interfaces (output and input, both ways)."""
        asked = self.frame
        names = list(asked.index) if names is None else list(names)
        own = {n: _iface_delays_ms(self.model.vnode(n)) for n in names}
        values = [[0.0 if s == d else asked.loc[s, d] + asked.loc[d, s] + own[s][0] + own[d][1] + own[d][0] + own[s][1]
                   for d in names] for s in names]
        return pd.DataFrame(values, index=pd.Index(names, name="from"), columns=pd.Index(names, name="to"))

    def _compared(self, measured: pd.DataFrame, rel: float, slack_ms: float) -> pd.DataFrame:
        requested = self.requested_rtt(list(measured.index))
        rows = []
        for src in measured.index:
            for dst in measured.columns:
                if src != dst:
                    want = requested.loc[src, dst]
                    got = measured.loc[src, dst]
                    rows.append({"from": src, "to": dst, "requested_rtt_ms": want, "measured_rtt_ms": got,
                                 "error_ms": got - want, "error_pct": 100 * (got - want) / want if want else float("nan"),
                                 "ok": bool(abs(got - want) <= max(rel * want, slack_ms)), "measured_twice": False})
        return pd.DataFrame(rows).set_index(["from", "to"])

    def plot_latencies(self, measured: pd.DataFrame | None = None) -> Figure:
        """Heatmaps of the requested RTT (``requested_rtt``: the matrix and the interfaces' delays) and, given
        ``measure_latencies()``'s frame, the measured one."""
        from matplotlib.figure import Figure

        from .drawing import displayable

        rtt = self.requested_rtt()
        panels = [("requested RTT (ms)", rtt)] + ([("measured RTT (ms)", measured)] if measured is not None else [])
        displayable()  # a Figure without pyplot: shown once, as the cell's value (pyplot's showed it twice)
        fig = Figure(figsize=(5.5 * len(panels), 4.5), layout="constrained")  # room for titles and long names
        axes = fig.subplots(1, len(panels), squeeze=False)
        top = max(float(frame.max().max()) for _, frame in panels) or 1.0
        for ax, (title, frame) in zip(axes[0], panels):
            image = ax.imshow(frame.to_numpy(dtype=float), vmin=0, vmax=top, cmap="viridis")
            ax.set_title(title)
            names = list(frame.index)
            step = max(1, len(names) // 20)  # readable labels at N = 100
            ax.set_xticks(range(0, len(names), step), names[::step], rotation=90)
            ax.set_yticks(range(0, len(names), step), names[::step])
            fig.colorbar(image, ax=ax)
        return fig
