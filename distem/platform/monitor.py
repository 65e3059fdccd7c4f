"""Watching a running platform: samplers on every pnode's agent (agent/monitor.py), their rows as
one tidy DataFrame, plots with the events behind them, and a fidelity watch.

The samplers read on the pnodes, at one shared instant grid (the clocks' offsets are measured as
for events), and keep their rows until fetched: ``frame`` (``p.metrics``) fetches what is new
from every pnode in one call each and keeps it here. Counters become rates (per second, bits for
interfaces) on the way; a counter that goes back (a vnode restarted: new cgroup, new veth) gives
no rate for that step. Distem's pnode probes are samplers too, with Distem's shapes.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import pandas as pd

from ..errors import ValidationError
from ..model import PlatformModel
from ..model.names import ifb_name, veth_name
from ..plan.shaping import USERSPACE_CEILING_PPS
from .events import Events
from .measure import BUSY
from .pool import PnodePool

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MIN_INTERVAL, DEFAULT_MAX_MB = 0.1, 256.0
LEAD = 0.2  # s from the start call to the first tick, so that every pnode has its sampler running
COLUMNS = ["time", "pnode", "vnode", "iface", "peer", "metric", "value"]
LABELS = ("vnode", "iface", "peer")
PLATFORM = "platform"  # the sampler p.monitor_start runs; Distem's probes are named by their 'name'
RATE_WINDOW_S = 2.0  # an interface over its rate for this long is flagged by fidelity()

# What a sampled number is, seen from the vnode: (device kind, the agent's metric) -> (raw name,
# name of the derived value, scale, whether it is a counter, turned into a rate). The host side of
# a veth receives what the vnode sends; its queue holds what goes in, the ifb's what goes out.
DEVICE = {
    ("veth", "tx_bytes"): ("rx_bytes", "rx_mbit_s", 8e-6, True),
    ("veth", "rx_bytes"): ("tx_bytes", "tx_mbit_s", 8e-6, True),
    ("veth", "tx_packets"): ("rx_packets", "rx_packets_s", 1.0, True),
    ("veth", "rx_packets"): ("tx_packets", "tx_packets_s", 1.0, True),
    ("veth", "tx_drops"): ("rx_drops", "rx_drops_s", 1.0, True),
    ("veth", "rx_drops"): ("tx_drops", "tx_drops_s", 1.0, True),
    ("veth", "queue_bytes"): ("rx_queue_bytes", "rx_queue_bytes", 1.0, False),
    ("veth", "queue_drops"): ("rx_queue_drops", "rx_queue_drops_s", 1.0, True),
    ("ifb", "queue_bytes"): ("tx_queue_bytes", "tx_queue_bytes", 1.0, False),
    ("ifb", "queue_drops"): ("tx_queue_drops", "tx_queue_drops_s", 1.0, True),
}
CGROUP = {
    "cpu_ns": ("cpu_ns", "cpu", 1e-9, True),  # CPU-seconds per second
    "cpu_throttled_ns": ("cpu_throttled_ns", "cpu_throttled", 1e-9, True),
    "memory_bytes": ("memory_bytes", "memory_bytes", 1.0, False),
    "memory_peak_bytes": ("memory_peak_bytes", "memory_peak_bytes", 1.0, False),
    "io_read_bytes": ("io_read_bytes", "io_read_bytes_s", 1.0, True),
    "io_write_bytes": ("io_write_bytes", "io_write_bytes_s", 1.0, True),
}
PNODE = {
    "cpu_busy": ("cpu_busy", "cpu_busy", 1.0, False),  # fraction of all its cores, over the last interval
    "load1": ("load1", "load1", 1.0, False),
    "load5": ("load5", "load5", 1.0, False),
    "load15": ("load15", "load15", 1.0, False),
    "memory_available_bytes": ("memory_available_bytes", "memory_available_bytes", 1.0, False),
    "delay_line_received": ("delay_line_received", "delay_line_packets_s", 1.0, True),
    "delay_line_dropped": ("delay_line_dropped", "delay_line_drops_s", 1.0, True),
    "delay_line_held": ("delay_line_held", "delay_line_held", 1.0, False),
    "host_rx_bytes": ("host_rx_bytes", "host_rx_bytes_s", 1.0, True),
    "host_tx_bytes": ("host_tx_bytes", "host_tx_bytes_s", 1.0, True),
}
RTT = {"rtt_ms": ("rtt_ms", "rtt_ms", 1.0, False),  # the mean of the replies heard in the interval
       "rtt_replies": ("rtt_replies", "rtt_replies", 1.0, False)}


class Meaning(NamedTuple):
    """What a sampled key is: where (vnode, iface, peer; None where it does not apply) and what."""

    vnode: str | None
    iface: str | None
    peer: str | None
    raw: str
    derived: str
    scale: float
    counter: bool


@dataclass
class _Rows:
    """What one pnode's sampler has sent: its keys, and the rows, one block per layout of keys."""

    keys: list[tuple[str, str, str]] = field(default_factory=list)
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)  # layout, times, values
    lost: int = 0
    busy_s: float = 0.0
    error: str = ""  # why the pnode's sampler ended early


@dataclass
class _Series:
    interval: float
    epoch: float  # this controller's time.time() of t = 0
    rows: dict[str, _Rows] = field(default_factory=dict)
    stopped: float | None = None
    fetched: int = 0  # fetches that brought rows: the frames built before them are stale
    frames: dict[bool, tuple[int, pd.DataFrame]] = field(default_factory=dict)  # raw -> (fetched, frame)


class Monitor:
    """Owns the series sampled on the pnodes (the platform's, and Distem's probes) and what each
    host device was (a vnode removed since keeps its name in the rows)."""

    def __init__(self, model: PlatformModel, pool: PnodePool, events: Events) -> None:
        self.model, self.pool, self.events = model, pool, events
        self.series: dict[str, _Series] = {}
        self.devices: dict[str, tuple[str, str, str]] = {}  # host device -> (vnode, iface, "veth" | "ifb")
        self.probes: dict[str, dict[str, Any]] = {}  # Distem probe name -> its description

    # -- starting and stopping -------------------------------------------------------------
    def start(self, interval: float = 1.0, *, max_mb: float = DEFAULT_MAX_MB,
              rtt: Sequence[tuple[str, str]] = ()) -> None:
        """Sample every vnode (CPU, throttling, memory, IO), every interface (bytes, packets, drops,
        queue) and every pnode (CPU busy, load, memory, the delay line) each ``interval`` s, on the
        pnodes; ``max_mb``: what each pnode keeps before the oldest rows go (see ``p.metrics``);
        ``rtt``: (source, destination) vnode pairs whose round trip is probed all along (fping from
        the source's namespace, every tenth of the interval, at most 100 ms): ``rtt_ms`` per
        interval, the mean of the replies heard, and ``rtt_replies``.

        Raises:
            ValidationError: an interval under 0.1 s, a bad ``max_mb`` or pair, or monitoring already on.
        """
        interval, max_mb = _positive("interval", interval, MIN_INTERVAL), _positive("max_mb", max_mb, 1.0)
        if PLATFORM in self.series and self.series[PLATFORM].stopped is None:
            raise ValidationError("monitor", "running", "monitoring is on already; p.monitor_stop() first")
        pings: dict[str, list[list[str]]] = {p: [] for p in self.pool.sessions}
        for pair in rtt:
            if not (isinstance(pair, (tuple, list)) and len(pair) == 2 and all(isinstance(n, str) for n in pair)):
                raise ValidationError("rtt", pair, "expected (source vnode, destination vnode) pairs")
            source, destination = (self.model.vnode(n) for n in pair)
            if not destination.ifaces or not source.ifaces:
                raise ValidationError("rtt", pair, "both vnodes need an interface")
            pings[source.host].append([f"{source.name}->{destination.name}", source.name,
                                       str(destination.ifaces[0].address.ip)])
        pid = self.model.platform_id
        self._begin(PLATFORM, interval, max_mb, {"devices": [f"d{pid}v"], "queues": [f"d{pid}f"],
                                                 "platform": True, "system": True}, {p: {"pings": v} for p, v in pings.items()})

    def _begin(self, name: str, interval: float, max_mb: float, sources: dict[str, Any],
               per_pnode: dict[str, dict[str, Any]] | None = None) -> None:
        pnodes = list(self.pool.sessions)
        offsets = {p: self.pool.clock_offset(p) for p in pnodes}
        epoch = time.time() + LEAD
        self.pool.on_all({p: ("monitor_start", {"name": name, "interval": interval, "epoch": epoch + offsets[p],
                                                "max_mb": max_mb, **sources, **(per_pnode or {}).get(p, {})})
                          for p in pnodes})
        self.series[name] = _Series(interval, epoch, {p: _Rows() for p in pnodes})
        self._learn_devices()

    def stop(self) -> None:
        """Stop sampling (what was sampled stays in ``p.metrics``)."""
        self._end(PLATFORM)

    def _end(self, name: str) -> None:
        series = self.series.get(name)
        if series is None or series.stopped is not None or self.pool.closed:
            return
        self.pool.on_all({p: ("monitor_stop", {"name": name}) for p in series.rows})
        self.fetch(name)
        series.stopped = time.time()

    def running(self) -> bool:
        series = self.series.get(PLATFORM)
        return series is not None and series.stopped is None

    def _learn_devices(self) -> None:
        pid = self.model.platform_id
        for vnode in self.model.vnodes.values():
            for iface in vnode.ifaces:
                self.devices[veth_name(pid, vnode.index, iface.slot)] = (vnode.name, iface.name, "veth")
                self.devices[ifb_name(pid, vnode.index, iface.slot)] = (vnode.name, iface.name, "ifb")

    # -- fetching --------------------------------------------------------------------------
    def fetch(self, name: str = PLATFORM) -> None:
        """What every pnode sampled since the last fetch, one call each (they free it)."""
        series = self.series.get(name)
        if series is None or series.stopped is not None or self.pool.closed:
            return
        self._learn_devices()
        answers = self.pool.on_all({p: ("monitor_fetch", {"name": name, "known_keys": len(rows.keys)})
                                    for p, rows in series.rows.items()})
        series.fetched += any(answer["chunks"] for answer in answers.values())
        for pnode, answer in answers.items():
            rows = series.rows[pnode]
            rows.keys += [tuple(k) for k in answer["keys"]]
            for chunk in answer["chunks"]:
                layout = np.asarray(chunk["layout"], dtype=np.int64)
                times = np.frombuffer(chunk["times"], dtype=np.float64)
                values = np.frombuffer(chunk["values"], dtype=np.float64).reshape(len(times), len(layout))
                rows.blocks.append((layout, times, values))
            rows.lost, rows.busy_s = answer["lost"], answer["busy_s"]
            if answer["error"] and not rows.error:
                rows.error = answer["error"]
                warnings.warn(f"monitoring ended early on {pnode}: {rows.error}; what it sampled before stays "
                              "in p.metrics (attrs['errors']); p.monitor_stop() then p.monitor_start() to go on",
                              RuntimeWarning, stacklevel=3)

    def _meaning(self, key: tuple[str, str, str]) -> Meaning | None:
        kind, name, metric = key
        if kind == "dev":
            vnode, iface, device = self.devices.get(name, (None, None, ""))
            found = DEVICE.get((device, metric))
            return Meaning(vnode, iface, None, *found) if found and vnode else None
        if kind == "rtt":
            source, _, peer = name.partition("->")
            return Meaning(source, None, peer, *RTT[metric]) if metric in RTT else None
        found = (CGROUP if kind == "cgroup" else PNODE).get(metric)
        return Meaning(name if kind == "cgroup" else None, None, None, *found) if found else None

    # -- the frame ---------------------------------------------------------------------------
    def frame(self, raw: bool = False, name: str = PLATFORM) -> pd.DataFrame:
        """The sampled series, tidy: time (s from the start), pnode, vnode, iface, metric, value.
        Counters are rates (``rx_mbit_s``, ``cpu`` in CPU-seconds per second, ``io_read_bytes_s``...),
        at the end of each interval; ``raw``: the counters as read. ``.attrs``: the start instant,
        the interval, rows lost per pnode (over ``max_mb`` before a fetch), why a pnode's sampler
        ended early (``errors``), each sampler's own CPU cost (fraction of one core)."""
        series = self.series.get(name)
        if series is None:
            return pd.DataFrame(columns=COLUMNS)
        self.fetch(name)
        cached = series.frames.get(raw)
        if cached is None or cached[0] != series.fetched:
            cached = series.frames[raw] = (series.fetched, self._build(series, raw))
        return cached[1].copy(deep=False)  # columns a caller adds stay out of the cache

    def _build(self, series: _Series, raw: bool) -> pd.DataFrame:
        meanings = {pnode: [self._meaning(k) for k in rows.keys] for pnode, rows in series.rows.items()}
        known = [m for ms in meanings.values() for m in ms if m]
        categories = {"pnode": list(series.rows), "metric": sorted({m.raw if raw else m.derived for m in known}),
                      **{label: sorted({getattr(m, label) for m in known} - {None}) for label in LABELS}}
        parts = [self._pnode_frame(i, rows, meanings[pnode], categories, raw)
                 for i, (pnode, rows) in enumerate(series.rows.items()) if rows.blocks]

        def column(name: str) -> np.ndarray:
            if not parts:
                return np.zeros(0, dtype=float if name in ("time", "value") else np.int32)
            return parts[0][name] if len(parts) == 1 else np.concatenate([p[name] for p in parts])

        # Categories built from codes: no column of strings, and pandas stacks no int block (5.8 M rows: 0.8 s).
        frame = pd.DataFrame({name: pd.Categorical.from_codes(column(name), categories=categories[name])
                              if name in categories else column(name) for name in COLUMNS})
        if len(parts) > 1:
            frame = frame.sort_values("time", kind="stable", ignore_index=True)
        elapsed = (series.stopped or time.time()) - series.epoch
        frame.attrs.update(epoch=series.epoch, interval=series.interval,
                           lost_rows={p: r.lost for p, r in series.rows.items()},
                           errors={p: r.error for p, r in series.rows.items() if r.error},
                           sampler_cpu={p: r.busy_s / elapsed if elapsed > 0 else 0.0 for p, r in series.rows.items()})
        return frame

    def _pnode_frame(self, index: int, rows: _Rows, meanings: list[Meaning | None],
                     categories: dict[str, list[str]], raw: bool) -> dict[str, np.ndarray]:
        """One pnode's rows as columns of codes into ``categories`` (-1: none). The rows go into one
        dense array (ticks x keys, NaN where a key was not sampled), so rates are one difference."""
        times = np.concatenate([t for _, t, _ in rows.blocks])
        dense = np.full((len(times), len(rows.keys)), np.nan)
        at = 0
        for layout, t, values in rows.blocks:
            dense[at:at + len(t), layout] = values
            at += len(t)
        known = np.array([m is not None for m in meanings], dtype=bool)
        if not raw:
            counter = np.array([bool(m and m.counter) for m in meanings], dtype=bool)
            scale = np.array([m.scale if m else 1.0 for m in meanings])
            with np.errstate(invalid="ignore", divide="ignore"):
                step = np.diff(dense[:, counter], axis=0)
                rate = step / np.diff(times)[:, None]
            rate[~(step >= 0)] = np.nan  # a counter that went back: restarted, no rate for that step
            dense[:, counter] = np.vstack([np.full((1, int(counter.sum())), np.nan), rate])
            dense *= scale
        dense[:, ~known] = np.nan
        keep = ~np.isnan(dense.ravel())
        keys = np.tile(np.arange(len(rows.keys), dtype=np.int32), len(times))[keep]

        def codes(column: str, of: Callable[[Meaning], str | None]) -> np.ndarray:
            index = {name: i for i, name in enumerate(categories[column])}
            table = np.array([index[of(m)] if m and of(m) is not None else -1 for m in meanings] + [-1], dtype=np.int32)
            return table[keys]

        return {"time": np.repeat(times, len(rows.keys))[keep], "pnode": np.full(len(keys), index, dtype=np.int32),
                **{label: codes(label, lambda m, label=label: getattr(m, label)) for label in LABELS},
                "metric": codes("metric", lambda m: m.raw if raw else m.derived), "value": dense.ravel()[keep]}

    # -- looking at it ---------------------------------------------------------------------------
    def series_of(self, metric: str, vnodes: Sequence[str] | None = None, frame: pd.DataFrame | None = None
                  ) -> pd.DataFrame:
        """One metric as a wide frame: time as index, a column per vnode (vnode/iface for interfaces,
        source->peer for RTTs, the pnode for pnode metrics)."""
        frame = self.frame() if frame is None else frame
        rows = frame[frame.metric == metric]
        if vnodes is not None:
            rows = rows[rows.vnode.isin(list(vnodes))]
        if rows.empty:
            return pd.DataFrame()
        vnode = rows.vnode.astype(str)
        label = np.where(rows.iface.notna(), vnode + "/" + rows.iface.astype(str),
                         np.where(rows.peer.notna(), vnode + "->" + rows.peer.astype(str),
                                  np.where(rows.vnode.notna(), vnode, rows.pnode.astype(str))))
        return rows.assign(label=label).pivot_table(index="time", columns="label", values="value", observed=True)

    def plot(self, metric: str = "rx_mbit_s", vnodes: Sequence[str] | None = None, *, ax: Axes | None = None,
             events: bool = True, busy: bool = True) -> Any:
        """``metric`` over time, a line per vnode (or interface); the events of the last run drawn
        behind (``events``) and, shaded, the intervals where a pnode's CPU was over 90% busy
        (``busy``): what was measured then is suspect."""
        import matplotlib.pyplot as plt

        frame = self.frame()
        wide = self.series_of(metric, vnodes, frame)
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 3.5))
        interval = self.series[PLATFORM].interval if PLATFORM in self.series else 1.0
        for column in wide.columns:
            line = _with_gaps(wide[column].dropna(), interval)
            ax.plot(line.index, line.to_numpy(), label=column, lw=1.4)
        if busy:
            for pnode, start, end in self._busy_spans(frame):
                ax.axvspan(start, end, color="tab:red", alpha=0.12, lw=0)
                ax.annotate(f"{pnode} > {BUSY:.0%} CPU", (start, 1), xycoords=("data", "axes fraction"),
                            xytext=(2, -10), textcoords="offset points", fontsize=7, color="tab:red")
        if events:
            self._draw_events(ax)
        ax.set_xlabel("seconds from the monitor's start")
        ax.set_ylabel(metric)
        if len(wide.columns):
            ax.legend(fontsize=8, loc="upper right")
        return ax

    def event_times(self) -> pd.DataFrame:
        """The last event run on the monitor's clock: ``p.events`` with ``time`` (s from the monitor's start)."""
        series = self.series.get(PLATFORM)
        events = self.events.frame
        if series is None or self.events.epoch is None or events.empty:
            return events.assign(time=pd.Series(dtype=float))
        at = events.applied_s.where(events.applied_s.notna(), events.planned_s)
        return events.assign(time=self.events.epoch - series.epoch + at)

    def _draw_events(self, ax: Axes) -> None:
        events = self.event_times()
        for _, event in events.iterrows():
            ax.axvline(event.time, color="gray", alpha=0.5, lw=1, ls="--")
            if len(events) <= 30:
                ax.annotate(f"{event.resource} {event.type} {event.value}", (event.time, 1),
                            xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right", fontsize=7,
                            color="dimgray", xytext=(-2, -2), textcoords="offset points")

    def _busy_spans(self, frame: pd.DataFrame) -> list[tuple[str, float, float]]:
        """(pnode, start, end) of each run of intervals over BUSY."""
        series = self.series.get(PLATFORM)
        interval = series.interval if series else 1.0
        spans = []
        busy = frame[frame.metric == "cpu_busy"]
        for pnode, rows in busy.groupby("pnode", observed=True):
            rows = rows.sort_values("time")
            over = (rows.value > BUSY).to_numpy()
            t = rows.time.to_numpy()
            edges = np.diff(np.concatenate([[False], over, [False]]).astype(int))  # +1 a run's start, -1 past its end
            spans += [(str(pnode), float(t[i] - interval), float(t[j - 1]))
                      for i, j in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1))]
        return spans

    # -- the fidelity watch ----------------------------------------------------------------------
    def fidelity(self, tolerance: float = 0.05) -> pd.DataFrame:
        """What makes the sampled run suspect, one row each: a pnode over 90% CPU busy (when, how
        long), the delay line dropping packets or past its packet rate, an interface carrying more than
        its rate (by more than ``tolerance``, over 2 s). Empty: nothing seen."""
        frame = self.frame()
        series = self.series.get(PLATFORM)
        window = max(1, round(RATE_WINDOW_S / (series.interval if series else 1.0)))
        rows = [{"what": "pnode busy", "pnode": p, "vnode": None, "iface": None, "start": s, "end": e,
                 "detail": f"CPU over {BUSY:.0%} busy for {e - s:.1f} s: delays and rates measured then are suspect"}
                for p, s, e in self._busy_spans(frame)]
        drops = frame[(frame.metric == "delay_line_drops_s") & (frame.value > 0)]
        for pnode, d in drops.groupby("pnode", observed=True):
            rows.append({"what": "delay line drops", "pnode": pnode, "vnode": None, "iface": None,
                         "start": d.time.min(), "end": d.time.max(),
                         "detail": f"the delay line dropped packets (up to {d.value.max():.0f}/s): over its ceiling"})
        near = frame[(frame.metric == "delay_line_packets_s") & (frame.value > USERSPACE_CEILING_PPS)]
        for pnode, d in near.groupby("pnode", observed=True):
            rows.append({"what": "delay line at its ceiling", "pnode": pnode, "vnode": None, "iface": None,
                         "start": d.time.min(), "end": d.time.max(),
                         "detail": f"the delay line took up to {d.value.max():,.0f} packets/s, past the "
                                   f"{USERSPACE_CEILING_PPS:,} it holds with its delays (docs/links.md)"})
        for vnode in self.model.vnodes.values():
            for iface in vnode.ifaces:
                for direction, limits in (("rx", iface.input), ("tx", iface.output)):
                    if limits is None or not limits.rate_bps:
                        continue
                    carried = frame[(frame.metric == f"{direction}_mbit_s") & (frame.vnode == vnode.name)
                                    & (frame.iface == iface.name)]
                    asked = limits.rate_bps / 1e6
                    # Over RATE_WINDOW_S: a sample alone may hold what TCP sent in a burst before the
                    # shaper's queue dropped it (the counters are the veth's, before the shaper).
                    sustained = carried.sort_values("time").set_index("time").value.rolling(window).mean()
                    over = sustained[sustained > asked * (1 + tolerance)]
                    if len(over):
                        rows.append({"what": "over its rate", "pnode": vnode.host, "vnode": vnode.name,
                                     "iface": iface.name, "start": over.index.min() - RATE_WINDOW_S,
                                     "end": over.index.max(),
                                     "detail": f"{direction} carried up to {over.max():.2f} Mbit/s over "
                                               f"{RATE_WINDOW_S:g} s, limit {asked:g} Mbit/s"})
        return pd.DataFrame(rows, columns=["what", "pnode", "vnode", "iface", "start", "end", "detail"])

    # -- Distem's probes -------------------------------------------------------------------------
    def pnodes_launch_probes(self, desc: Mapping[str, Mapping[str, Any]], ref_time: float | None = None) -> None:
        """Distem's: ``{'ProbeBW': {'name', 'frequency' (Hz), 'interface'}, 'ProbeLoadAvg': {'name',
        'frequency'}}`` on every pnode; ``ref_time``: the clock the samples' times are on (default:
        this machine's ``time.time()``).

        Example::

            p.pnodes_launch_probes({"ProbeLoadAvg": {"name": "load", "frequency": 1}})
            p.pnodes_get_probes_data()   # {pnode: {"load": [[t, [1m, 5m, 15m]], ...]}}
        """
        probes = _check_probes(desc)
        self.pnodes_delete_probes()
        shift = 0.0 if ref_time is None else float(ref_time) - time.time()
        for name, probe in probes.items():
            reads = {"host": probe["interface"]} if probe["type"] == "ProbeBW" else {"loadavg": True}
            self._begin(name, 1.0 / probe["frequency"], DEFAULT_MAX_MB,
                        {"devices": [], "queues": [], "platform": False, "system": False, **reads})
            self.probes[name] = {**probe, "shift": shift}

    def pnodes_get_probes_data(self) -> dict[str, dict[str, list[list[Any]]]]:
        """Distem's: ``{pnode: {probe name: [[time, value], ...]}}``; ProbeBW's value is
        ``[rx bytes/s, tx bytes/s]``, ProbeLoadAvg's ``[1, 5, 15 min]``.

        Example::

            p.pnodes_get_probes_data()["local"]["load"][-1]
        """
        out: dict[str, dict[str, list[list[Any]]]] = {p: {} for p in self.pool.sessions}
        for name, probe in self.probes.items():
            frame = self.frame(name=name)
            series = self.series[name]
            metrics = ["host_rx_bytes_s", "host_tx_bytes_s"] if probe["type"] == "ProbeBW" else ["load1", "load5", "load15"]
            for pnode, rows in frame.groupby("pnode", observed=True):
                wide = rows.pivot_table(index="time", columns="metric", values="value", observed=True)
                wide = wide.reindex(columns=metrics).dropna()
                out[str(pnode)][name] = [[round(series.epoch + t + probe["shift"], 3), [float(v) for v in values]]
                                         for t, values in zip(wide.index, wide.to_numpy())]
        return out

    def pnodes_stop_probes(self) -> None:
        """Distem's: stop sampling; what was sampled stays.

        Example::

            p.pnodes_stop_probes()
        """
        for name in self.probes:
            self._end(name)

    def pnodes_restart_probes(self) -> None:
        """Distem's: sample again, on the same clock, after a stop.

        Example::

            p.pnodes_restart_probes()
        """
        for name in self.probes:
            series = self.series[name]
            if series.stopped is not None:
                self.pool.on_all({p: ("monitor_resume", {"name": name}) for p in series.rows})
                series.stopped = None

    def pnodes_delete_probes(self) -> None:
        """Distem's: stop, and forget the probes and their samples on every pnode.

        Example::

            p.pnodes_delete_probes()
        """
        self.pnodes_stop_probes()
        for name in list(self.probes):
            self.pool.on_all({p: ("monitor_stop", {"name": name, "forget": True}) for p in self.series[name].rows})
            del self.series[name], self.probes[name]


def _with_gaps(series: pd.Series, interval: float) -> pd.Series:
    """A NaN where samples are missing (a vnode down, a pair without replies), so the line breaks there
    instead of joining both sides."""
    times = series.index.to_numpy()
    if len(times) < 2:
        return series
    breaks = times[1:][np.diff(times) > 1.5 * interval] - interval / 2
    return pd.concat([series, pd.Series(np.nan, index=breaks)]).sort_index()


def _positive(field: str, value: Any, least: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= least:
        raise ValidationError(field, value, f"expected a number >= {least:g}")
    return float(value)


def _check_probes(desc: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Distem's description, checked whole: ``{name: {"type", "frequency", "interface"?}}``."""
    if not isinstance(desc, Mapping) or not desc:
        raise ValidationError("probes", desc, "expected {'ProbeBW': {...}, 'ProbeLoadAvg': {...}}")
    out = {}
    for kind, probe in desc.items():
        if kind not in ("ProbeBW", "ProbeLoadAvg"):
            raise ValidationError("probe type", kind, "allowed: ProbeBW, ProbeLoadAvg")
        if not isinstance(probe, Mapping) or not isinstance(probe.get("name"), str) or not probe["name"]:
            raise ValidationError(f"{kind}", probe, "expected {'name': str, 'frequency': Hz"
                                  + (", 'interface': a pnode's interface}" if kind == "ProbeBW" else "}"))
        allowed = {"name", "frequency", "interface"} if kind == "ProbeBW" else {"name", "frequency"}
        unknown = set(probe) - allowed
        if unknown:
            raise ValidationError(f"{kind} key", sorted(unknown)[0], f"allowed: {', '.join(sorted(allowed))}")
        frequency = _positive(f"{kind} frequency", probe.get("frequency", 1), 1e-3)
        if frequency > 1 / MIN_INTERVAL:
            raise ValidationError(f"{kind} frequency", frequency, f"at most {1 / MIN_INTERVAL:g} Hz")
        if kind == "ProbeBW" and not isinstance(probe.get("interface"), str):
            raise ValidationError("ProbeBW interface", probe.get("interface"), "expected a pnode's interface name")
        out[probe["name"]] = {"type": kind, "frequency": frequency, **({"interface": probe["interface"]}
                                                                        if kind == "ProbeBW" else {})}
    return out
