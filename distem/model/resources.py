"""A vnode's CPU: how many cores it is pinned to and how fast they run (Distem's ``vcpu``).

    vcpu_create('n1', 0.5, 'ratio', 2)     two cores, each at half speed
    {'vcpu': {'corenb': 2, 'val': 0.5, 'unit': 'ratio'}}
    {'vcpu': {'corenb': 1, 'val': 1200, 'unit': 'mhz'}}   needs the pnode's cpufreq maximum

The slowdown is a CFS bandwidth limit: quota = ratio x cores x period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ValidationError

CFS_PERIOD_US = 100_000


@dataclass(frozen=True, slots=True, kw_only=True)
class VCpu:
    cores: int
    ratio: float = 1.0
    exclusive: bool = False

    @property
    def quota_us(self) -> int | None:
        """The CFS quota per period, or None when the cores run at full speed."""
        return None if self.ratio >= 1 else round(self.ratio * self.cores * CFS_PERIOD_US)


def parse_vcpu(field: str, val: object, unit: object = "mhz", corenb: object = 1, exclusive: object = False,
               max_mhz: int | None = None, pnode: str = "") -> VCpu:
    """Validate Distem's (val, unit, corenb); 'mhz' converts with the pnode's maximum frequency.

    Raises:
        ValidationError: bad numbers, an unknown unit, or MHz on a pnode without cpufreq.
    """
    if not isinstance(corenb, int) or isinstance(corenb, bool) or corenb < 1:
        raise ValidationError(f"{field}.corenb", corenb, "expected a whole number of cores, at least 1")
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not val > 0:
        raise ValidationError(f"{field}.val", val, "expected a positive number (a ratio or MHz)")
    if not isinstance(exclusive, bool):
        raise ValidationError(f"{field}.exclusive", exclusive, "expected true or false")
    if unit == "ratio":
        ratio = float(val)
    elif unit == "mhz":
        if not max_mhz:
            raise ValidationError(f"{field}.unit", unit, f"pnode {pnode} exposes no cpufreq maximum frequency, so "
                                  "MHz cannot be converted; give a ratio instead (unit='ratio', e.g. 0.5)")
        ratio = float(val) / max_mhz
    else:
        raise ValidationError(f"{field}.unit", unit, "expected 'mhz' or 'ratio'")
    if ratio > 1:
        raise ValidationError(f"{field}.val", val, "a vnode cannot run faster than the pnode's cores (ratio <= 1)")
    return VCpu(cores=corenb, ratio=ratio, exclusive=exclusive)


def parse_vcpu_desc(field: str, desc: object, max_mhz: int | None = None, pnode: str = "") -> VCpu | None:
    if desc is None:
        return None
    if not isinstance(desc, Mapping):
        raise ValidationError(field, desc, "expected {'corenb': N, 'val': V, 'unit': 'ratio' | 'mhz'}")
    unknown = sorted(set(desc) - {"corenb", "val", "unit", "exclusive"})
    if unknown:
        raise ValidationError(field, unknown[0], "unknown key; allowed: corenb, val, unit, exclusive")
    return parse_vcpu(field, desc.get("val", 1), desc.get("unit", "ratio"), desc.get("corenb", 1),
                      desc.get("exclusive", False), max_mhz, pnode)
