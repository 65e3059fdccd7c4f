"""Events over time: Distem's event manager, ``p.at(t)``, churn, run on the pnodes at their instants.

Starting a schedule *rehearses* it: each event, in time order, is performed by the parts' own
calls (``Links.viface_update``, ``VNodes.lifecycle``, ``Matrix.set_cells``, ``Resources``...)
with the pool recording what they would send instead of sending it. So an event is checked
exactly as the live call is (a bad one raises ValidationError naming it, before anything runs),
and what each pnode must do at each instant is known ahead. The model is then put back; each
pnode's agent gets its timeline (timeline.py) and one shared start instant on its own clock
(the clocks' offsets are measured). When the timeline is over, or stopped, the events that were
applied are performed again on the model the same way, so that the model says what the pnodes
hold. While a timeline runs, the platform refuses other changes (they would contradict what
was prepared).
"""

from __future__ import annotations

import copy
import logging
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import AgentError, DistemError, ValidationError
from ..model import FROZEN, RUNNING, PlatformModel
from ..model.events import (
    LINK_TYPES, Event, Target, check_contradictions, churn_action, link_change, parse_resource, parse_trace,
    parse_trace_string, random_schedule,
)
from ..model.units import parse_duration
from .links import Links
from .matrix import Matrix
from .pool import PnodePool, Request
from .resources import Resources
from .routes import Routes
from .vnodes import VNodes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

log = logging.getLogger(__name__)
DEFAULT_UNTIL = 600.0  # s: how far a random source runs when it names no end
LEAD = 0.3  # s between the last pnode's timeline arriving and the start instant
nan = math.nan
MEMORY_KEYS = {"limit_v1": "mem", "hard_limit": "hard_limit", "soft_limit": "soft_limit", "swap": "swap"}
COLUMNS = ["planned_s", "applied_s", "skew_ms", "late_ms", "took_ms", "resource", "type", "value", "source", "outcome", "message", "pnodes"]


@dataclass
class RandomSource:
    target: Target
    type: str
    generator: Any
    first_value: Any
    seed: int
    until: float | None


@dataclass
class _Run:
    """A started schedule: its events, what each sent where, and the pnodes' records."""

    events: list[Event]
    requests: list[dict[str, list[Request]]]
    epoch: float  # the start instant, this controller's time.time()
    offsets: dict[str, float]  # pnode clock minus ours, s
    before: dict[str, Any]  # the parts' state at the start (Events._state)
    records: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)  # event -> pnode -> record
    finished: bool = False


class Events:
    """Owns the schedule (events and random sources added, not started yet) and the last run."""

    def __init__(self, model: PlatformModel, pool: PnodePool, links: Links, matrix: Matrix, resources: Resources,
                 vnodes: VNodes, routes: Routes) -> None:
        self.model, self.pool, self.links, self.matrix = model, pool, links, matrix
        self.resources, self.vnodes, self.routes = resources, vnodes, routes
        self.planned: list[Event] = []
        self.sources: list[RandomSource] = []
        self.run: _Run | None = None

    # -- adding (Distem's calls) -------------------------------------------------------------------
    def event_trace_add(self, resource: Mapping[str, Any], event_type: str, trace: Any) -> None:
        """Distem's: ``trace`` is ``{seconds: value}`` from the manager's start.

        Example::

            p.event_trace_add({"type": "viface", "vnodename": "node1", "vifacename": "if0",
                               "viface_direction": "output"}, "latency", {1: "10ms", 2.5: 40, 4: 10})
        """
        target = parse_resource(resource, event_type)
        self.planned += [Event(at, target, event_type, value, "trace") for at, value in parse_trace(trace)]

    def event_trace_string_add(self, resource: Mapping[str, Any], event_type: str, trace: str) -> None:
        """Distem's: lines ``"<seconds> <value>"``.

        Example::

            p.event_trace_string_add({"type": "vcpu", "vnodename": "node1"}, "power", "5 0.5\\n10 1")
        """
        target = parse_resource(resource, event_type)
        self.planned += [Event(at, target, event_type, value, "trace") for at, value in parse_trace_string(trace)]

    def event_trace_file_add(self, resource: Mapping[str, Any], event_type: str, path: str) -> None:
        """Distem's: a file of ``"<seconds> <value>"`` lines.

        Example::

            p.event_trace_file_add({"type": "vnode", "vnodename": "node1"}, "churn", "churn.trace")
        """
        try:
            with open(path) as f:
                text = f.read()
        except OSError as exc:
            raise ValidationError("trace file", path, f"cannot be read: {exc.strerror}") from None
        self.event_trace_string_add(resource, event_type, text)

    def event_random_add(self, resource: Mapping[str, Any], event_type: str, generator: Mapping[str, Any],
                         first_value: Any = None, *, seed: int | None = None, until: float | None = None) -> int:
        """Distem's, with a ``seed`` (default: one drawn now, and shown in ``p.events``) and an end:
        the source runs ``until`` s (default: the manager's ``duration``, else 600 s). Its seed.

        Example::

            p.event_random_add({"type": "viface", "vnodename": "node1", "vifacename": "if0"}, "bandwidth",
                               {"date": {"distribution": "exponential", "rate": 0.2},
                                "value": {"distribution": "uniform", "min": 10, "max": 100}}, seed=7)
        """
        target = parse_resource(resource, event_type)
        if seed is None:
            seed = secrets.randbits(32)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValidationError("seed", seed, "expected an integer")
        random_schedule(target, event_type, generator, first_value, seed, 0.0)  # checks the generator now
        self.sources.append(RandomSource(target, event_type, generator, first_value, seed, until))
        return seed

    def event_manager_start(self, duration: float | None = None) -> None:
        """Check every event, prepare what each pnode does, and start all the pnodes' timelines at one
        instant. ``duration``: where random sources without ``until`` end (default 600 s).

        Raises:
            ValidationError: a bad event (named), before anything runs or changes.

        Example::

            p.event_trace_add({"type": "vnode", "vnodename": "node1"}, "churn", {10: "down", 20: "up"})
            p.event_manager_start()
        """
        self.sync()
        if self.run is not None and not self.run.finished:
            raise ValidationError("event manager", "running", "a schedule runs already; event_manager_stop() first")
        if self.model.provisional:  # a timeline acts on vnodes made on their pnodes: they stay where they are
            self.vnodes.realize(sorted(self.model.provisional))
        try:
            events = self.schedule(duration)
            before = self._state()
            try:
                requests = self._rehearse(events)
            finally:
                self._restore(before)
        except ValidationError as exc:
            raise ValidationError(exc.field, exc.value, f"{exc.allowed} (nothing started; the schedule is kept: "
                                  "p.event_remove(row of p.events) or event_manager_stop() to clear it)") from exc
        by_pnode: dict[str, list[dict[str, Any]]] = {p: [] for p in self.pool.sessions}
        for i, (event, sent) in enumerate(zip(events, requests)):
            for pnode, reqs in sent.items():
                by_pnode[pnode].append({"id": i, "at": event.at, "requests": [list(r) for r in reqs]})
        used = {p: entries for p, entries in by_pnode.items() if entries}
        offsets = {p: self.pool.clock_offset(p) for p in used}
        self.pool.on_all({p: ("timeline_load", {"entries": entries}) for p, entries in used.items()})
        epoch = time.time() + LEAD
        self.run = _Run(events, requests, epoch, offsets, before)
        self.planned, self.sources = [], []  # the run has them now; what is added next is the next run
        try:
            self.pool.on_all({p: ("timeline_start", {"epoch": epoch + offsets[p]}) for p in used})
        except AgentError:
            self.stop()
            raise

    def event_manager_stop(self) -> None:
        """Stop every pnode's timeline (nothing fires afterwards) and clear the schedule; the model
        then holds what was applied, and ``p.events`` the run's record.

        Example::

            p.event_manager_stop()
        """
        self.stop()
        self.planned, self.sources = [], []

    # -- the pythonic timeline ---------------------------------------------------------------------
    def at(self, seconds: float) -> Moment:
        """What happens ``seconds`` after the start: ``p.at(30).latency("a", "if0", "50ms")``."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < 1e9:
            raise ValidationError("at", seconds, "expected seconds from the start (a number >= 0)")
        return Moment(self, float(seconds))

    def churn(self, vnodes: Sequence[str], availability: Mapping[str, Any], unavailability: Mapping[str, Any] | None = None,
              *, seed: int | None = None, until: float | None = None, first: str = "down") -> list[int]:
        """Each vnode alternates up (for a draw of ``availability`` s) and down (``unavailability``,
        default the same), each from its own generator seeded from ``seed``; the seeds."""
        base = secrets.randbits(32) if seed is None else seed
        generator = {"availability": availability, "unavailability": unavailability or availability}
        return [self.event_random_add({"type": "vnode", "vnodename": name}, "churn", generator, first,
                                      seed=base + i, until=until) for i, name in enumerate(vnodes)]

    def schedule(self, duration: float | None = None) -> list[Event]:
        """Every event, random sources drawn, in the order they run."""
        events = [event for event, _ in self._origins(duration)]
        check_contradictions(events)
        return events

    def _origins(self, duration: float | None) -> list[tuple[Event, RandomSource | None]]:
        """Each event in run order with the random source that drew it (None: added as it is)."""
        events: list[tuple[Event, RandomSource | None]] = [(event, None) for event in self.planned]
        for source in self.sources:
            until = source.until if source.until is not None else duration or DEFAULT_UNTIL
            events += [(event, source) for event in random_schedule(
                source.target, source.type, source.generator, source.first_value, source.seed, until)]
        events.sort(key=lambda pair: pair[0].at)  # stable: events of one instant keep the order they were added
        return events

    def event_remove(self, row: int) -> list[Event]:
        """Take row ``row`` of ``p.events`` (the schedule not started yet) out of it; what was removed. A
        random source's draw takes its whole source with it (its seed draws them together)."""
        origins = self._origins(None)
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < len(origins):
            raise ValidationError("row", row, f"expected a row of p.events, 0 to {len(origins) - 1}"
                                  if origins else "the schedule is empty")
        event, source = origins[row]
        if source is None:
            self.planned.remove(event)
            return [event]
        self.sources = [s for s in self.sources if s is not source]
        return [e for e, s in origins if s is source]

    # -- rehearsing ----------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {"model": self.model.snapshot(), "applied": copy.deepcopy(self.matrix.applied),
                "installed": copy.deepcopy(self.routes.installed)}

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.restore(state["model"])
        self.matrix.applied = copy.deepcopy(state["applied"])
        self.routes.installed = copy.deepcopy(state["installed"])

    def _rehearse(self, events: Sequence[Event]) -> list[dict[str, list[Request]]]:
        """Perform ``events`` on the parts with the pool recording; what each would send, by pnode."""
        out = []
        with self.pool.rehearsal() as recorded:
            for i, event in enumerate(events):
                try:
                    self._perform(event)
                except (DistemError, KeyError) as exc:
                    message = exc.args[0] if isinstance(exc, KeyError) else str(exc)
                    raise ValidationError(f"event {i}", event.label, str(message)) from exc
                out.append(recorded.take())
        return out

    def _perform(self, event: Event) -> None:
        t, value = event.target, event.value
        if t.kind == "vnode":
            self.model.vnode(t.vnode)
            self.vnodes.lifecycle(churn_action("churn", value, self.model.status[t.vnode]), [t.vnode])
        elif t.kind == "viface" and event.type in LINK_TYPES:
            iface = self.model.vnode(t.vnode).iface(t.iface)
            directions = [t.direction] if t.direction else ["input", "output"]
            self.links.viface_update(t.vnode, t.iface, {
                d: link_change(f"{t.vnode}.{t.iface}.{d}.{event.type}", event.type, value, getattr(iface, d))
                for d in directions})
        elif t.kind == "viface":  # "link"
            if value not in ("up", "down"):
                raise ValidationError("link", value, "expected 'up' or 'down'")
            self.links.link(t.vnode, t.iface, value == "up")
        elif t.kind == "vcpu":
            number = _number("power", value)
            self.resources.vcpu_update(t.vnode, number, "mhz" if number > 1 else "ratio")
        elif t.kind == "memory":
            self.resources.vmem_update(t.vnode, {MEMORY_KEYS[t.detail]: value})
        elif t.kind == "disk":
            keys = ["read_limit", "write_limit"] if t.detail == "rw_limit" else [t.detail]
            self.resources.vfilesystem_update(t.vnode, {"disk_throttling": {"limits": [
                {"device": t.device, **{key: value for key in keys}}]}})
        elif event.type == "partition":
            self.links.partition(*value)
        elif event.type == "heal":
            self.links.heal()
        elif event.type == "latencies":
            cells = {}
            for (src, dst), ms in dict(value).items():
                self.model.vnode(src), self.model.vnode(dst)
                cells[(src, dst)] = parse_duration(ms, f"latencies[{src}][{dst}]")
            self.matrix.set_cells(cells)
        else:
            raise ValidationError("event type", event.type, "not supported on this target")

    # -- following a run -------------------------------------------------------------------------------
    def running(self) -> bool:
        """Whether a timeline is still running (an ended one is taken in: the model follows it)."""
        self.sync()
        return self.run is not None and not self.run.finished

    def sync(self) -> None:
        """Once the last instant has passed and every pnode has applied its part, the model takes in
        what was applied."""
        run = self.run
        if run is None or run.finished:
            return
        last = run.events[-1].at if run.events else 0.0
        if time.time() < run.epoch + last:
            return
        pending = self._collect("timeline_status")
        if not pending:
            self._take_in()

    def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Block until the run's last event is applied (or ``timeout`` s); ``p.events``."""
        run = self.run
        if run is not None:
            deadline = None if timeout is None else time.monotonic() + timeout
            last = run.events[-1].at if run.events else 0.0
            time.sleep(max(0.0, min(run.epoch + last - time.time(),
                                    math.inf if deadline is None else deadline - time.monotonic())))
            while self.running():
                if deadline is not None and time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        return self.frame

    def stop(self) -> None:
        run = self.run
        if run is None or run.finished:
            return
        pnodes = {p for sent in run.requests for p in sent}
        self._collect("timeline_stop", pnodes)
        self._take_in()

    def _collect(self, operation: str, pnodes: set[str] | None = None) -> int:
        """The pnodes' records of the run; how many entries are still to come."""
        run = self.run
        assert run is not None
        pnodes = pnodes if pnodes is not None else {p for sent in run.requests for p in sent}
        answers = self.pool.on_all({p: (operation, {}) for p in pnodes})
        pending = 0
        for pnode, status in answers.items():
            pending += status["pending"] if operation == "timeline_status" else 0
            for record in status["records"]:
                run.records.setdefault(record["id"], {})[pnode] = record
        return pending

    def _take_in(self) -> None:
        """The model and the parts' state from the run's start plus each event applied without error."""
        run = self.run
        assert run is not None
        self._restore(run.before)
        with self.pool.rehearsal():
            for i, event in enumerate(run.events):
                if self._outcome(i)[0] in ("ok", "model only"):
                    try:
                        self._perform(event)
                    except (DistemError, KeyError) as exc:  # it relied on an event that failed
                        log.warning("event %d (%s) not taken into the model: %s", i, event.label, exc)
        run.finished = True

    def _outcome(self, i: int) -> tuple[str, str]:
        run = self.run
        assert run is not None
        if not run.requests[i]:
            return ("model only", "nothing to change on a pnode (e.g. the vnode is down: at its next start)")
        records = run.records.get(i, {})
        if set(records) != set(run.requests[i]):
            return ("not applied", "the timeline was stopped first")
        errors = [f"{p}: {r['message']}" for p, r in records.items() if r["outcome"] != "ok"]
        return ("error", "; ".join(errors)) if errors else ("ok", "")

    # -- looking at it ---------------------------------------------------------------------------------
    @property
    def frame(self) -> pd.DataFrame:
        """Every event of the last run, or of the schedule once events are added again (``preview``): planned
        and applied time (s from the start; applied: when its last pnode finished it), skew (applied -
        planned) = late (when the first pnode began it - planned) + took (a vnode's start: its boot),
        what, outcome."""
        self.sync()
        run = self.run
        if run is None or self.planned or self.sources:
            return self.preview()
        rows = []
        for i, event in enumerate(run.events):
            records = run.records.get(i, {})
            applied = max((r["applied"] for r in records.values()), default=nan)
            began = min((r["began"] for r in records.values()), default=nan)
            outcome, message = self._outcome(i)
            rows.append({"planned_s": event.at, "applied_s": applied, "skew_ms": 1000 * (applied - event.at),
                         "late_ms": 1000 * (began - event.at), "took_ms": 1000 * (applied - began),
                         "resource": event.target.label, "type": event.type, "value": event.value,
                         "source": event.source, "outcome": outcome, "message": message,
                         "pnodes": ", ".join(sorted(run.requests[i]))})
        frame = pd.DataFrame(rows, columns=COLUMNS)
        frame.attrs.update(epoch=run.epoch, clock_offsets_ms={p: 1000 * o for p, o in run.offsets.items()})
        return frame

    def preview(self, duration: float | None = None) -> pd.DataFrame:
        """What the next start runs, random sources drawn as ``event_manager_start(duration)`` will."""
        rows = [{"planned_s": e.at, "applied_s": nan, "skew_ms": nan, "late_ms": nan, "took_ms": nan,
                 "resource": e.target.label, "type": e.type, "value": e.value, "source": e.source,
                 "outcome": "planned", "message": "", "pnodes": ""} for e in self.schedule(duration)]
        frame = pd.DataFrame(rows, columns=COLUMNS)
        frame.attrs["until"] = duration or DEFAULT_UNTIL
        return frame

    @property
    def epoch(self) -> float | None:
        """The last run's start instant (``time.time()`` of this machine), or None."""
        return self.run.epoch if self.run else None

    def plot_events(self, ax: Axes | None = None, frame: pd.DataFrame | None = None) -> Any:
        """The timeline: one row per resource, a mark per event at its applied time (planned if not
        applied) labelled with its value; on ``ax`` (e.g. behind a measurement's plot) or a new figure."""
        import matplotlib.pyplot as plt

        frame = self.frame if frame is None else frame
        if ax is None:
            _, ax = plt.subplots(figsize=(9, 0.5 + 0.4 * max(1, frame["resource"].nunique())))
        rows = {name: i for i, name in enumerate(dict.fromkeys(f"{r} {t}" for r, t in zip(frame.resource, frame.type)))}
        colours = {"ok": "tab:blue", "model only": "tab:gray", "error": "tab:red", "not applied": "lightgray",
                   "planned": "tab:blue"}
        for _, event in frame.iterrows():
            at = event.applied_s if event.applied_s == event.applied_s else event.planned_s
            y = rows[f"{event.resource} {event.type}"]
            ax.axvline(at, color=colours.get(event.outcome, "black"), alpha=0.15, lw=1)
            ax.plot([at], [y], "|", ms=12, color=colours.get(event.outcome, "black"))
            if len(frame) <= 60:
                ax.annotate(str(event.value), (at, y), xytext=(3, 4), textcoords="offset points", fontsize=8)
        ax.set_yticks(list(rows.values()), list(rows))
        ax.set_ylim(-0.7, len(rows) - 0.3)
        ax.set_xlabel("seconds from the start")
        return ax


def _number(field: str, value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError(field, value, "expected a number (a ratio <= 1, or MHz)") from None


class Moment:
    """The events at one instant; each call adds one and returns the moment, to chain."""

    def __init__(self, events: Events, at: float) -> None:
        self.events, self.at_s = events, at

    def _add(self, target: Target, event_type: str, value: Any) -> Moment:
        self.events.planned.append(Event(self.at_s, target, event_type, value))
        return self

    def _link(self, event_type: str, vnode: str, iface: str, value: Any, direction: str | None) -> Moment:
        resource = {"type": "viface", "vnodename": vnode, "vifacename": iface,
                    **({"viface_direction": direction} if direction else {})}
        return self._add(parse_resource(resource, event_type), event_type, value)

    def bandwidth(self, vnode: str, iface: str, value: Any, direction: str | None = None) -> Moment:
        """``value``: "100mbps", a bare number of Mbit/s, "50%" of the current rate, or "max"."""
        return self._link("bandwidth", vnode, iface, value, direction)

    def latency(self, vnode: str, iface: str, value: Any, direction: str | None = None) -> Moment:
        """``value``: "20ms", bare ms, "+5ms", "-5ms", "200%"; ``direction`` None: both."""
        return self._link("latency", vnode, iface, value, direction)

    def jitter(self, vnode: str, iface: str, value: Any, direction: str | None = None) -> Moment:
        return self._link("jitter", vnode, iface, value, direction)

    def loss(self, vnode: str, iface: str, value: Any, direction: str | None = None) -> Moment:
        return self._link("loss", vnode, iface, value, direction)

    def corruption(self, vnode: str, iface: str, value: Any, direction: str | None = None) -> Moment:
        return self._link("corruption", vnode, iface, value, direction)

    def duplication(self, vnode: str, iface: str, value: Any, direction: str | None = None) -> Moment:
        return self._link("duplication", vnode, iface, value, direction)

    def reordering(self, vnode: str, iface: str, value: Any, direction: str | None = None) -> Moment:
        return self._link("reordering", vnode, iface, value, direction)

    def link_down(self, vnode: str, iface: str) -> Moment:
        """The interface's cable out: no carrier in the vnode, nothing passes either way."""
        return self._link("link", vnode, iface, "down", None)

    def link_up(self, vnode: str, iface: str) -> Moment:
        return self._link("link", vnode, iface, "up", None)

    def up(self, vnode: str) -> Moment:
        """Start the vnode (churn ``up``)."""
        return self._add(Target("vnode", vnode), "churn", "up")

    def down(self, vnode: str) -> Moment:
        """Stop the vnode (churn ``down``)."""
        return self._add(Target("vnode", vnode), "churn", "down")

    def freeze(self, vnode: str) -> Moment:
        return self._add(Target("vnode", vnode), "churn", "freeze")

    def unfreeze(self, vnode: str) -> Moment:
        return self._add(Target("vnode", vnode), "churn", "unfreeze")

    def power(self, vnode: str, value: float) -> Moment:
        """The vnode's CPU speed: a ratio (<= 1) or MHz (> 1)."""
        return self._add(Target("vcpu", vnode), "power", value)

    def memory(self, vnode: str, mb: Any, limit: str = "hard_limit") -> Moment:
        """A memory limit (``limit``: hard_limit, soft_limit, swap, limit_v1), in MB or 'max'."""
        return self._add(parse_resource({"type": limit, "vnodename": vnode}, "memory_limit"), "memory_limit", mb)

    def disk(self, vnode: str, device: str, value: Any, limit: str = "rw_limit") -> Moment:
        """Disk throttling on ``device`` (``limit``: read_limit, write_limit, rw_limit)."""
        return self._add(parse_resource({"type": limit, "vnodename": vnode, "device": device}, "disk_throttling"),
                         "disk_throttling", value)

    def partition(self, *groups: Sequence[str]) -> Moment:
        """Cut the platform into ``groups`` (see ``Platform.partition``)."""
        return self._add(Target("platform"), "partition", tuple(tuple(g) for g in groups))

    def heal(self) -> Moment:
        return self._add(Target("platform"), "heal", "")

    def latencies(self, cells: Mapping[tuple[str, str], Any] | pd.DataFrame) -> Moment:
        """Latency-matrix cells at this instant: ``{(src, dst): ms}`` or a DataFrame of one-way ms
        (only its non-NaN cells)."""
        if isinstance(cells, pd.DataFrame):
            cells = {(str(s), str(d)): float(v) for s, row in cells.iterrows() for d, v in row.items() if v == v}
        if not isinstance(cells, Mapping):
            raise ValidationError("latencies", cells, "expected {(source, destination): ms} or a DataFrame")
        return self._add(Target("platform"), "latencies", dict(cells))
