"""Events over time (pure): what changes, where, and when, from Distem's calls or ``p.at(...)``.

An ``Event`` is an instant (seconds from the schedule's start), a ``Target`` (a vnode, one of its
interfaces and directions, its CPU, a memory or disk limit, or the whole platform), a type and a
value. Distem's forms all come here:

    trace      {seconds: value}, "seconds value" lines, or a file of those lines
    random     a generator {'date': DIST, 'value': DIST} (churn: 'availability' / 'unavailability')
               with DIST {'distribution': 'uniform', 'min', 'max'} | exponential 'rate' |
               weibull 'scale', 'shape', drawn from ``random.Random(seed)``: a seed gives the
               same schedule on any machine

Bare numbers are read as Distem reads them: bandwidth Mbit/s, latency and jitter ms, loss,
corruption, duplication and reordering percent. A link value may also be relative to the value
at its instant: "+20ms", "-5ms", "200%" (of the current one).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .entities import DOWN, FROZEN, READY, RUNNING
from .links import LinkLimits
from .units import parse_duration, parse_percent, parse_rate

LINK_TYPES = ("bandwidth", "latency", "jitter", "loss", "corruption", "duplication", "reordering")
CHURN = ("up", "down", "freeze", "unfreeze")
MEMORY_KINDS = ("limit_v1", "hard_limit", "soft_limit", "swap")
DISK_KINDS = ("read_limit", "write_limit", "rw_limit")
# Which event types each resource type takes ("link": carrier down/up; "platform": ours, p.at() only).
TYPES_OF: dict[str, tuple[str, ...]] = {
    "vnode": ("churn",), "viface": (*LINK_TYPES, "link"), "vcpu": ("power",),
    **{kind: ("memory_limit",) for kind in MEMORY_KINDS}, **{kind: ("disk_throttling",) for kind in DISK_KINDS},
    "platform": ("latencies", "partition", "heal"),
}
DIRECTIONS = ("input", "output")
DISTRIBUTIONS = {"uniform": ("min", "max"), "exponential": ("rate",), "weibull": ("scale", "shape")}
_DISTRIBUTIONS_TEXT = "; ".join(f"{name} ({', '.join(params)})" for name, params in DISTRIBUTIONS.items())
MAX_EVENTS = 100_000  # in one schedule: beyond, a generator's parameters are surely wrong
_RELATIVE = re.compile(r"^\s*(?P<sign>[+-])\s*(?P<rest>.+)$")


@dataclass(frozen=True, slots=True)
class Target:
    """What an event changes. ``direction`` None: both of a viface's; ``detail``: the memory key
    or the disk limit; ``device``: the throttled disk."""

    kind: str
    vnode: str = ""
    iface: str = ""
    direction: str | None = None
    detail: str = ""
    device: str = ""

    @property
    def label(self) -> str:
        if self.kind == "platform":
            return "platform"
        if self.kind == "viface":
            return f"{self.vnode}.{self.iface}" + (f" {self.direction}" if self.direction else "")
        if self.kind == "vnode":
            return self.vnode
        if self.kind == "vcpu":
            return f"{self.vnode} cpu"
        return f"{self.vnode} {self.detail}" + (f" {self.device}" if self.device else "")


@dataclass(frozen=True, slots=True)
class Event:
    at: float  # seconds from the schedule's start
    target: Target
    type: str
    value: Any
    source: str = "at"  # where it came from: "at", "trace", "random seed=N"

    @property
    def label(self) -> str:
        return f"t={self.at:g} s {self.target.label} {self.type} {self.value!r}"


def parse_resource(resource: object, event_type: str) -> Target:
    """Distem's resource dict, checked against the event type.

    Raises:
        ValidationError: unknown resource type or event type, a key missing, a bad direction.
    """
    if not isinstance(resource, Mapping):
        raise ValidationError("resource", resource, "expected a dict such as {'type': 'vnode', 'vnodename': 'n1'}")
    kind = resource.get("type")
    if kind not in TYPES_OF or kind == "platform":
        raise ValidationError("resource.type", kind, f"allowed: {', '.join(k for k in TYPES_OF if k != 'platform')}")
    if event_type not in TYPES_OF[kind]:
        raise ValidationError("event_type", event_type, f"a {kind} resource takes {', '.join(TYPES_OF[kind])}")
    allowed = {"type", "vnodename"} | ({"vifacename", "viface_direction"} if kind == "viface" else set()) \
        | ({"device"} if kind in DISK_KINDS else set())
    unknown = sorted(set(resource) - allowed)
    if unknown:
        raise ValidationError(f"resource.{unknown[0]}", resource[unknown[0]], f"a {kind} resource takes "
                              f"{', '.join(sorted(allowed))}")
    vnode = resource.get("vnodename")
    if not isinstance(vnode, str) or not vnode:
        raise ValidationError("resource.vnodename", vnode, "expected a vnode's name")
    if kind == "vnode":
        return Target("vnode", vnode)
    if kind == "vcpu":
        return Target("vcpu", vnode)
    if kind == "viface":
        iface, direction = resource.get("vifacename"), resource.get("viface_direction")
        if not isinstance(iface, str) or not iface:
            raise ValidationError("resource.vifacename", iface, "expected the vnode's interface name")
        if direction is not None and direction not in DIRECTIONS:
            raise ValidationError("resource.viface_direction", direction, "expected 'input' or 'output' (absent: both)")
        if event_type == "link" and direction is not None:
            raise ValidationError("resource.viface_direction", direction, "a link goes down in both directions")
        return Target("viface", vnode, iface, direction)
    if kind in MEMORY_KINDS:
        return Target("memory", vnode, detail=kind)
    device = resource.get("device")
    if not isinstance(device, str) or not device:
        raise ValidationError("resource.device", device, "expected the throttled device's path, e.g. '/dev/sda'")
    return Target("disk", vnode, detail=kind, device=device)


# -- traces -----------------------------------------------------------------------------------
def _instant(field: str, value: object) -> float:
    try:
        at = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValidationError(field, value, "expected seconds from the start (a number >= 0)") from None
    if not 0 <= at < 1e9:
        raise ValidationError(field, value, "expected seconds from the start (a number >= 0)")
    return at


def parse_trace(trace: object) -> list[tuple[float, Any]]:
    """``{seconds: value}`` (or a list of pairs), sorted by time."""
    if isinstance(trace, str):
        return parse_trace_string(trace)
    if isinstance(trace, Mapping):
        pairs = list(trace.items())
    elif isinstance(trace, Iterable):
        pairs = [tuple(pair) for pair in trace]
    else:
        raise ValidationError("trace", trace, "expected {seconds: value}")
    out = []
    for pair in pairs:
        if len(pair) != 2:
            raise ValidationError("trace", pair, "expected (seconds, value) pairs")
        out.append((_instant(f"trace[{pair[0]!r}]", pair[0]), pair[1]))
    return sorted(out, key=lambda p: p[0])


def parse_trace_string(text: str) -> list[tuple[float, Any]]:
    """Lines ``<seconds> <value>``; blank lines and ``#`` comments are skipped."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2:
            raise ValidationError(f"trace line {number}", line, "expected '<seconds> <value>'")
        out.append((_instant(f"trace line {number}", words[0]), words[1]))
    return sorted(out, key=lambda p: p[0])


# -- random generators ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Distribution:
    name: str
    params: tuple[float, ...]

    def draw(self, rng: random.Random) -> float:
        if self.name == "uniform":
            return rng.uniform(*self.params)
        if self.name == "exponential":
            return rng.expovariate(self.params[0])
        return rng.weibullvariate(*self.params)


def parse_distribution(field: str, desc: object) -> Distribution:
    if not isinstance(desc, Mapping) or desc.get("distribution") not in DISTRIBUTIONS:
        raise ValidationError(f"{field}.distribution", desc.get("distribution") if isinstance(desc, Mapping) else desc,
                              f"allowed: {_DISTRIBUTIONS_TEXT}")
    name = desc["distribution"]
    unknown = sorted(set(desc) - {"distribution", *DISTRIBUTIONS[name]})
    if unknown:
        raise ValidationError(f"{field}.{unknown[0]}", desc[unknown[0]], f"{name} takes {', '.join(DISTRIBUTIONS[name])}")
    params = []
    for key in DISTRIBUTIONS[name]:
        value = desc.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1e9:
            raise ValidationError(f"{field}.{key}", value, "expected a number >= 0")
        params.append(float(value))
    if name == "uniform" and params[0] > params[1]:
        raise ValidationError(f"{field}.max", params[1], f"below min ({params[0]:g})")
    if name != "uniform" and not all(params):
        raise ValidationError(field, dict(desc), f"{name}'s parameters must be greater than zero")
    return Distribution(name, tuple(params))


def random_schedule(target: Target, event_type: str, generator: object, first_value: Any, seed: int,
                    until: float) -> list[Event]:
    """The events of one random source up to ``until`` s: each date is the previous one plus a draw
    of 'date' (churn: of 'availability' while up, 'unavailability' while down). Values are drawn
    from 'value' and rounded to integers (at least 1) except power, as Distem does; churn
    alternates from ``first_value`` (default 'down')."""
    if not isinstance(generator, Mapping):
        raise ValidationError("generator", generator, "expected {'date': {...}, 'value': {...}}")
    rng = random.Random(seed)
    source = f"random seed={seed}"
    if event_type == "churn":
        return _churn_schedule(target, generator, first_value, rng, source, until)
    unknown = sorted(set(generator) - {"date", "value"})
    if unknown or "date" not in generator:
        raise ValidationError("generator", dict(generator), "expected {'date': {...}, 'value': {...}}")
    dates = parse_distribution("generator.date", generator["date"])
    values = parse_distribution("generator.value", generator["value"]) if "value" in generator else None
    if values is None and first_value is None:
        raise ValidationError("generator.value", None, "a distribution of values is needed (or first_value)")
    events: list[Event] = []
    at = 0.0
    while True:
        at += dates.draw(rng)
        if at > until:
            return events
        drawn: Any = first_value if not events and first_value is not None or values is None else values.draw(rng)
        if event_type != "power" and isinstance(drawn, float):
            drawn = max(1, round(drawn))
        events.append(Event(round(at, 6), target, event_type, drawn, source))
        _check_count(events)


def _churn_schedule(target: Target, generator: Mapping[str, Any], first_value: Any, rng: random.Random, source: str,
                    until: float) -> list[Event]:
    unknown = sorted(set(generator) - {"date", "availability", "unavailability"})
    if unknown:
        raise ValidationError(f"generator.{unknown[0]}", generator[unknown[0]], "churn takes 'availability' and "
                              "'unavailability' (or 'date' for both)")
    if "date" not in generator and not {"availability", "unavailability"} <= set(generator):
        raise ValidationError("generator", dict(generator), "churn needs 'availability' and 'unavailability' "
                              "(or 'date' for both)")
    up = parse_distribution("generator.availability", generator.get("availability", generator.get("date")))
    down = parse_distribution("generator.unavailability", generator.get("unavailability", generator.get("date")))
    value = first_value or "down"
    if value not in CHURN:
        raise ValidationError("first_value", value, f"churn takes {', '.join(CHURN)}")
    opposite = {"down": "up", "up": "down", "freeze": "unfreeze", "unfreeze": "freeze"}
    events: list[Event] = []
    at = 0.0
    while True:
        at += (up if value in ("down", "freeze") else down).draw(rng)
        if at > until:
            return events
        events.append(Event(round(at, 6), target, "churn", value, source))
        value = opposite[value]
        _check_count(events)


def _check_count(events: list[Event]) -> None:
    if len(events) > MAX_EVENTS:
        raise ValidationError("generator", f"over {MAX_EVENTS} events", "its dates are too close for its horizon: "
                              "a larger date distribution, or a shorter 'until'")


# -- values -----------------------------------------------------------------------------------------
def _relative(value: object) -> tuple[str, str] | None:
    """('+' | '-' | '%', the rest) for "+20ms", "-5ms", "200%"; None for an absolute value."""
    if isinstance(value, str):
        match = _RELATIVE.match(value)
        if match:
            return match["sign"], match["rest"]
        if value.strip().endswith("%") and value.strip()[:-1].replace(".", "", 1).isdigit():
            return "%", value.strip()[:-1]
    return None


def _scaled(field: str, current: int, relative: tuple[str, str], parse: Callable[[str, str], int]) -> int:
    sign, rest = relative
    if sign == "%":
        factor = float(rest) / 100
        return round(current * factor)
    step = parse(rest, field)
    out = current + step if sign == "+" else current - step
    if out < 0:
        raise ValidationError(field, f"{sign}{rest}", f"takes the value below zero (it is {current} now)")
    return out


def link_change(field: str, event_type: str, value: object, current: LinkLimits | None) -> dict[str, Any]:
    """One direction's Distem dict for a link event, from the direction's limits at that instant
    (``parse_limits`` checks what it makes).

    Raises:
        ValidationError: a bad value, or a relative one with nothing to be relative to.
    """
    now = current or LinkLimits()
    relative = _relative(value) if event_type != "loss" or not str(value).strip().endswith("%") else None
    if event_type == "bandwidth":
        if value in ("max", "unlimited", None):
            return {"bandwidth": None}
        if relative is not None:
            if now.rate_bps is None:
                raise ValidationError(field, value, "a relative bandwidth needs a rate to start from")
            return {"bandwidth": {"rate": f"{_scaled(field, now.rate_bps, relative, _rate_mbit)}bit"}}
        return {"bandwidth": {"rate": f"{_rate_mbit(value, field)}bit"}}
    if event_type in ("latency", "jitter"):
        key = "delay_us" if event_type == "latency" else "jitter_us"
        us = _scaled(field, getattr(now, key), relative, parse_duration) if relative else parse_duration(value, field)
        delay, jitter = (us, now.jitter_us) if event_type == "latency" else (now.delay_us, us)
        return {"latency": {"delay": f"{delay}us", "jitter": f"{jitter}us"}}
    attr = {"loss": "loss_ppm", "corruption": "corrupt_ppm", "duplication": "duplicate_ppm",
            "reordering": "reorder_ppm"}[event_type]
    if relative:
        ppm = _scaled(field, getattr(now, attr), relative, parse_percent)
    else:
        ppm = parse_percent(value, field)
    return {event_type: {"percent": ppm / 10_000}}


def _rate_mbit(value: object, field: str) -> int:
    """A bare number is Mbit/s, as in Distem's events."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = f"{value}mbit"
    return parse_rate(value, field)


def churn_action(field: str, value: object, status: str) -> str:
    """The lifecycle action of a churn value, checked against the vnode's status at that instant."""
    actions = {"up": "start", "down": "stop", "freeze": "freeze", "unfreeze": "unfreeze"}
    allowed = {"up": (READY, DOWN), "down": (RUNNING, FROZEN), "freeze": (RUNNING,), "unfreeze": (FROZEN,)}
    if value not in actions:
        raise ValidationError(field, value, f"churn takes {', '.join(CHURN)}")
    if status not in allowed[str(value)]:
        raise ValidationError(field, value, f"the vnode is {status} then; '{value}' needs it "
                              f"{' or '.join(allowed[str(value)])}")
    return actions[str(value)]


def check_contradictions(events: Iterable[Event]) -> None:
    """Two events on the same target and type at the same instant must agree.

    Raises:
        ValidationError: naming both events.
    """
    seen: dict[tuple[float, Target, str], Event] = {}
    for event in events:
        key = (event.at, event.target, event.type)
        other = seen.setdefault(key, event)
        if other is not event and other.value != event.value:
            raise ValidationError("events", event.label, f"contradicts {other.label} (same target, type and instant)")


__all__ = ["Event", "Target", "Distribution", "parse_resource", "parse_trace", "parse_trace_string",
           "parse_distribution", "random_schedule", "link_change", "churn_action", "check_contradictions",
           "LINK_TYPES", "CHURN", "TYPES_OF"]
