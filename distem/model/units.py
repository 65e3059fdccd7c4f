"""Parse quantities once, at the edge, into integers in base units.

Rates become bit/s, durations microseconds, sizes bytes, percentages parts per
million. Strings follow tc's spelling with one deliberate difference: "mbps"
means megabits per second (as Distem's users and the seed's YAML mean it), not
tc's megabytes. Byte rates are written with a capital "B/s" ("10MB/s").

Each field says what a bare number means (Distem's conventions: memory in MB,
matrix latencies in ms, disk throttling in bytes/s), through ``bare=``.
"""

from __future__ import annotations

import math
import re

from ..errors import ValidationError

__all__ = ["parse_rate", "parse_duration", "parse_size", "parse_percent", "format_rate", "format_duration"]

_NUMBER = r"(?P<num>\d+(?:\.\d*)?|\.\d+)(?:[eE](?P<exp>[+-]?\d+))?"
_PATTERN = re.compile(rf"^\s*{_NUMBER}\s*(?P<unit>[A-Za-z/%]*)\s*$")

_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}

_RATE_BITS = {f"{p}{s}": m for p, m in _DECIMAL.items() for s in ("bit", "bps", "bit/s", "b/s")}
_RATE_BITS.update({f"{p}{s}": m for p, m in _BINARY.items() for s in ("bit", "bit/s")})
# Capital B means bytes; checked case-sensitively before the case-folded bit units.
_RATE_BYTES = {f"{p.upper()}B/s": 8 * m for p, m in _DECIMAL.items()} | {"kB/s": 8000}
_RATE_BYTES.update({f"{p[0].upper()}iB/s": 8 * m for p, m in _BINARY.items()})

# The longest one-way delay emulated: beyond a minute a delay only fills the queue (netem's, the
# delay line's) with what the sender keeps sending.
MAX_DELAY_US = 60 * 10**6
_DURATION_US = {"us": 1, "usec": 1, "µs": 1, "ms": 1000, "msec": 1000, "s": 10**6, "sec": 10**6,
                "m": 60 * 10**6, "min": 60 * 10**6}

_SIZE_BYTES = {"b": 1, "k": 2**10, "kb": 2**10, "kib": 2**10, "m": 2**20, "mb": 2**20, "mib": 2**20,
               "g": 2**30, "gb": 2**30, "gib": 2**30, "t": 2**40, "tb": 2**40, "tib": 2**40}


_TOO_LARGE = 1e15  # in any unit: beyond every size, rate and duration a platform can have


def _split(field: str, value: object, what: str) -> tuple[float, str]:
    if isinstance(value, bool):
        raise ValidationError(field, value, f"expected {what}")
    if isinstance(value, (int, float)):
        number, unit = (float(value) if abs(value) < _TOO_LARGE else math.inf), ""
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise ValidationError(field, value, f"expected {what}")
        number = float(f"{match['num']}e{match['exp'] or 0}")  # "1e400" is inf, not an OverflowError
        unit = match["unit"]
    else:
        raise ValidationError(field, value, f"expected {what}")
    if not math.isfinite(number) or number < 0:
        raise ValidationError(field, value, f"expected {what}, finite and not negative")
    if number >= _TOO_LARGE:
        raise ValidationError(field, value, f"expected {what}; this is too large to mean anything here")
    return number, unit


def parse_rate(value: object, field: str = "rate", *, bare: str = "bit") -> int:
    """A rate in bit/s. ``bare`` is the unit of a bare number: "bit" or "byte"."""
    what = 'a rate such as "100mbps", "1gbit", "10MB/s"'
    number, unit = _split(field, value, what)
    if unit == "":
        factor = 8 if bare == "byte" else 1
    elif unit in _RATE_BYTES:
        factor = _RATE_BYTES[unit]
    elif unit.lower() in _RATE_BITS:
        factor = _RATE_BITS[unit.lower()]
    else:
        raise ValidationError(field, value, f"unknown rate unit {unit!r}; expected {what}")
    bits = round(number * factor)
    if bits <= 0:
        raise ValidationError(field, value, "a rate must be greater than zero")
    return bits


def parse_duration(value: object, field: str = "delay", *, bare: str = "ms") -> int:
    """A duration in microseconds. ``bare`` is the unit of a bare number."""
    what = 'a duration such as "10ms", "1.5ms", "200us", "1s"'
    number, unit = _split(field, value, what)
    unit = unit or bare
    if unit not in _DURATION_US:
        raise ValidationError(field, value, f"unknown time unit {unit!r}; expected {what}")
    return round(number * _DURATION_US[unit])


def parse_size(value: object, field: str = "size", *, bare: str = "MB") -> int:
    """A size in bytes (binary multiples, as memory is counted). ``bare``: unit of a bare number."""
    what = 'a size such as "512M", "4G", "64MiB", or a number of megabytes'
    number, unit = _split(field, value, what)
    unit = (unit or bare).lower()
    if unit not in _SIZE_BYTES:
        raise ValidationError(field, value, f"unknown size unit {unit!r}; expected {what}")
    return round(number * _SIZE_BYTES[unit])


def parse_percent(value: object, field: str = "percent") -> int:
    """A percentage (0-100, "%" optional) in parts per million."""
    number, unit = _split(field, value, 'a percentage such as 10, 2.5 or "25%"')
    if unit not in ("", "%"):
        raise ValidationError(field, value, "expected a percentage such as 10 or \"25%\"")
    if number > 100:
        raise ValidationError(field, value, "a percentage must be between 0 and 100")
    return round(number * 10_000)


def format_rate(bits_per_s: int) -> str:
    """The shortest exact spelling: 100_000_000 -> "100mbit"."""
    for suffix, factor in (("gbit", 10**9), ("mbit", 10**6), ("kbit", 10**3)):
        if bits_per_s % factor == 0:
            return f"{bits_per_s // factor}{suffix}"
    return f"{bits_per_s}bit"


def format_duration(us: int) -> str:
    """The shortest exact spelling: 10_000 -> "10ms"."""
    if us and us % 1_000_000 == 0:
        return f"{us // 1_000_000}s"
    if us % 1000 == 0:
        return f"{us // 1000}ms"
    return f"{us}us"
