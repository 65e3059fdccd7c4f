"""Traffic limits of one direction of a viface, from Distem's ``input``/``output`` dicts.

    {'bandwidth': {'rate': '100mbps'}, 'latency': {'delay': '20ms', 'jitter': '2ms'},
     'loss': {'percent': 10}, 'corruption': {'percent': 1}, 'duplication': {'percent': 1},
     'reordering': {'percent': 5}}

Each property may also be given bare (``'bandwidth': '100mbps'``, ``'latency': '20ms'``,
``'loss': 10``). ``output`` is traffic leaving the vnode, ``input`` traffic entering it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..errors import ValidationError, check_keys
from .units import MAX_DELAY_US, format_duration, format_rate, parse_duration, parse_percent, parse_rate

_PERCENT_KEYS = {"loss": "loss_ppm", "corruption": "corrupt_ppm", "duplication": "duplicate_ppm",
                 "reordering": "reorder_ppm"}
PROPERTIES = ("bandwidth", "latency", *_PERCENT_KEYS)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkLimits:
    rate_bps: int | None = None
    delay_us: int = 0
    jitter_us: int = 0
    loss_ppm: int = 0
    corrupt_ppm: int = 0
    duplicate_ppm: int = 0
    reorder_ppm: int = 0

    @property
    def needs_delay_line(self) -> bool:
        """Whether anything beyond a rate is asked (netem's, or the userspace line's, job)."""
        return bool(self.delay_us or self.jitter_us or self.loss_ppm or self.corrupt_ppm or self.duplicate_ppm
                    or self.reorder_ppm)

    def __bool__(self) -> bool:
        return self.rate_bps is not None or self.needs_delay_line

    def to_distem(self) -> dict[str, Any]:
        """Back to Distem's dict shape (only what is set)."""
        out: dict[str, Any] = {}
        if self.rate_bps is not None:
            out["bandwidth"] = {"rate": format_rate(self.rate_bps)}
        if self.delay_us or self.jitter_us:
            out["latency"] = {"delay": format_duration(self.delay_us),
                              **({"jitter": format_duration(self.jitter_us)} if self.jitter_us else {})}
        for key, attr in _PERCENT_KEYS.items():
            if getattr(self, attr):
                out[key] = {"percent": getattr(self, attr) / 10_000}
        return out


def _inner(field: str, value: object, key: str) -> object:
    """``{'rate': x}`` or a bare ``x``."""
    if isinstance(value, Mapping):
        check_keys(field, value, [key])
        if key not in value:
            raise ValidationError(field, dict(value), f"expected {{'{key}': ...}}")
        return value[key]
    return value


def parse_limits(field: str, desc: object, base: LinkLimits | None = None) -> LinkLimits | None:
    """Validate one direction's dict. With ``base``, only the properties given change (live updates).

    Raises:
        ValidationError: unknown property, bad unit or value, jitter or reordering without a delay.
    """
    if desc is None:
        return base
    if not isinstance(desc, Mapping):
        raise ValidationError(field, desc, "expected a dict such as {'bandwidth': {'rate': '100mbps'}}")
    check_keys(field, desc, PROPERTIES, "property")
    changes: dict[str, Any] = {}
    if "bandwidth" in desc:
        rate = _inner(f"{field}.bandwidth", desc["bandwidth"], "rate")
        changes["rate_bps"] = None if rate in (None, "max", "unlimited") else parse_rate(rate, f"{field}.bandwidth.rate")
    if "latency" in desc:
        latency = desc["latency"]
        if isinstance(latency, Mapping):
            check_keys(f"{field}.latency", latency, ["delay", "jitter"])
            changes["delay_us"] = parse_duration(latency.get("delay", 0), f"{field}.latency.delay")
            changes["jitter_us"] = parse_duration(latency.get("jitter", 0), f"{field}.latency.jitter")
        else:
            changes["delay_us"] = parse_duration(latency, f"{field}.latency")
            changes["jitter_us"] = 0
    for key, attr in _PERCENT_KEYS.items():
        if key in desc:
            changes[attr] = parse_percent(_inner(f"{field}.{key}", desc[key], "percent"), f"{field}.{key}.percent")
    limits = replace(base or LinkLimits(), **changes)
    if limits.delay_us > MAX_DELAY_US:
        raise ValidationError(f"{field}.latency.delay", format_duration(limits.delay_us),
                              f"at most {format_duration(MAX_DELAY_US)} (a longer delay only fills the queue)")
    if limits.jitter_us and not limits.delay_us:
        raise ValidationError(f"{field}.latency.jitter", format_duration(limits.jitter_us), "jitter needs a delay")
    if limits.jitter_us > limits.delay_us:
        raise ValidationError(f"{field}.latency.jitter", format_duration(limits.jitter_us),
                              "jitter larger than the delay would need negative delays")
    if limits.reorder_ppm and not limits.delay_us:
        raise ValidationError(f"{field}.reordering", limits.reorder_ppm / 10_000,
                              "reordering needs a delay (packets are reordered by letting some skip it)")
    return limits if limits else None


LIMIT_FIELDS = tuple(f.name for f in fields(LinkLimits))
