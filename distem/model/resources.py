"""A vnode's CPU, memory and disk IO limits (Distem's ``vcpu``, ``vmem``, ``disk_throttling``).

CPU: how many cores it is pinned to and how fast they run.

    vcpu_create('n1', 0.5, 'ratio', 2)     two cores, each at half speed
    {'vcpu': {'corenb': 2, 'val': 0.5, 'unit': 'ratio'}}
    {'vcpu': {'corenb': 1, 'val': 1200, 'unit': 'mhz'}}   needs the pnode's cpufreq maximum

The slowdown is a CFS bandwidth limit: quota = ratio x cores x period.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ValidationError, check_keys
from .units import parse_size

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


@dataclass(frozen=True, slots=True, kw_only=True)
class CpuSpec:
    """Distem's vcpu as asked, checked: a speed in MHz becomes a ratio only on the pnode chosen."""

    cores: int
    value: float
    unit: str  # "ratio" | "mhz"
    exclusive: bool = False

    def on(self, field: str, max_mhz: int | None, pnode: str = "") -> VCpu:
        """On a pnode whose cores run at ``max_mhz`` at most (None: no cpufreq there).

        Raises:
            ValidationError: MHz on a pnode without cpufreq, or faster than its cores."""
        if self.unit == "mhz":
            if not max_mhz:
                raise ValidationError(f"{field}.unit", self.unit, f"pnode {pnode} exposes no cpufreq maximum "
                                      "frequency, so MHz cannot be converted; give a ratio instead (unit='ratio', "
                                      "e.g. 0.5)")
            ratio = self.value / max_mhz
        else:
            ratio = self.value
        if ratio > 1:
            raise ValidationError(f"{field}.val", self.value, "a vnode cannot run faster than the pnode's cores "
                                  "(ratio <= 1)")
        return VCpu(cores=self.cores, ratio=ratio, exclusive=self.exclusive)


def cpu_spec(field: str, val: object, unit: object = "mhz", corenb: object = 1, exclusive: object = False) -> CpuSpec:
    """Validate Distem's (val, unit, corenb, exclusive), the pnode aside.

    Raises:
        ValidationError: bad numbers or an unknown unit.
    """
    if not isinstance(corenb, int) or isinstance(corenb, bool) or corenb < 1:
        raise ValidationError(f"{field}.corenb", corenb, "expected a whole number of cores, at least 1")
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not val > 0 or val == float("inf"):
        raise ValidationError(f"{field}.val", val, "expected a positive number (a ratio or MHz)")
    if not isinstance(exclusive, bool):
        raise ValidationError(f"{field}.exclusive", exclusive, "expected true or false")
    if unit not in ("ratio", "mhz"):
        raise ValidationError(f"{field}.unit", unit, "expected 'mhz' or 'ratio'")
    if unit == "ratio" and val > 1:
        raise ValidationError(f"{field}.val", val, "a vnode cannot run faster than the pnode's cores (ratio <= 1)")
    return CpuSpec(cores=corenb, value=float(val), unit=str(unit), exclusive=exclusive)


def parse_vcpu(field: str, val: object, unit: object = "mhz", corenb: object = 1, exclusive: object = False,
               max_mhz: int | None = None, pnode: str = "") -> VCpu:
    """Distem's (val, unit, corenb) on a pnode: 'mhz' converts with its maximum frequency.

    Raises:
        ValidationError: bad numbers, an unknown unit, or MHz on a pnode without cpufreq.
    """
    return cpu_spec(field, val, unit, corenb, exclusive).on(field, max_mhz, pnode)


def parse_cpu_spec(field: str, desc: object) -> CpuSpec | None:
    """Distem's ``vcpu`` dict: {'corenb': N, 'val': V, 'unit': 'ratio' | 'mhz', 'exclusive': bool}."""
    if desc is None:
        return None
    if not isinstance(desc, Mapping):
        raise ValidationError(field, desc, "expected {'corenb': N, 'val': V, 'unit': 'ratio' | 'mhz'}")
    check_keys(field, desc, ["corenb", "val", "unit", "exclusive"])
    return cpu_spec(field, desc.get("val", 1), desc.get("unit", "ratio"), desc.get("corenb", 1),
                    desc.get("exclusive", False))


def parse_vcpu_desc(field: str, desc: object, max_mhz: int | None = None, pnode: str = "") -> VCpu | None:
    """Distem's ``vcpu`` dict on a pnode."""
    spec = parse_cpu_spec(field, desc)
    return spec.on(field, max_mhz, pnode) if spec else None


# -- cgroup hierarchies -------------------------------------------------------------------

def describe_cgroups(cgroups: Mapping[str, int]) -> str:
    """What a pnode has mounted, for error messages: "v1: cpu, memory; v2: io"."""
    parts = [f"v{v}: " + (", ".join(sorted(c for c, h in cgroups.items() if h == v)) or "none") for v in (1, 2)]
    return "; ".join(parts)


def resolve_hierarchy(field: str, asked: object, controller: str, cgroups: Mapping[str, int] | None,
                      pnode: str = "") -> int:
    """The hierarchy a limit goes through: the one the pnode has ``controller`` on.

    ``asked`` ('v1', 'v2' or None for "what the pnode has") must match it. With
    ``cgroups`` None (no pnode chosen yet) only the spelling is checked.
    """
    if asked not in (None, "v1", "v2"):
        raise ValidationError(field, asked, "expected 'v1' or 'v2' (or leave it out: what the pnode has)")
    if cgroups is None:
        return int(asked[1]) if isinstance(asked, str) else 0
    have = cgroups.get(controller)
    if have is None:
        raise ValidationError(field, asked or controller, f"pnode {pnode} has no cgroup {controller} controller "
                              f"mounted ({describe_cgroups(cgroups)})")
    if asked is not None and int(asked[1]) != have:
        raise ValidationError(field, asked, f"pnode {pnode} has the {controller} controller on cgroup v{have} "
                              f"({describe_cgroups(cgroups)}); ask for 'v{have}' or leave 'hierarchy' out")
    return have


def _limit(field: str, value: object, parse: Callable[[object, str], int]) -> int | None:
    """A limit, or None for 'max' (no limit)."""
    if value == "max":
        return None
    amount: int = parse(value, field)
    if amount < 0:
        raise ValidationError(field, value, "expected a positive amount, or 'max' for no limit")
    return amount


# -- memory -------------------------------------------------------------------------------

_MEM_KEYS = {"hard": ("mem", "hard_limit"), "soft": ("soft_limit",), "swap": ("swap",)}


@dataclass(frozen=True, slots=True, kw_only=True)
class VMem:
    """Memory limits in bytes; None: no limit. ``swap`` is swap on top of ``hard``.

    v1: memory.limit_in_bytes, memory.soft_limit_in_bytes, memory.memsw.limit_in_bytes (hard + swap)
    v2: memory.max, memory.high (the soft limit: reclaimed, never killed), memory.swap.max
    """

    hierarchy: int
    hard: int | None = None
    soft: int | None = None
    swap: int | None = None

    def to_distem(self) -> dict[str, Any]:
        def mb(n: int | None) -> int | str:  # exact: MB when it is a whole number of them
            return "max" if n is None else n // 2**20 if n % 2**20 == 0 else f"{n}B"
        hard_key = "mem" if self.hierarchy == 1 else "hard_limit"
        return {"hierarchy": f"v{self.hierarchy}", hard_key: mb(self.hard), "soft_limit": mb(self.soft),
                "swap": mb(self.swap)}

    def on(self, field: str, cgroups: Mapping[str, int], pnode: str = "") -> VMem:
        """On a pnode with these controllers: through the hierarchy it has memory on (0: not chosen yet).

        Raises:
            ValidationError: the pnode has no memory controller, or not on the hierarchy asked; swap
                without memory on v1."""
        asked = f"v{self.hierarchy}" if self.hierarchy else None
        hierarchy = resolve_hierarchy(f"{field}.hierarchy", asked, "memory", cgroups, pnode)
        if hierarchy == 1 and self.swap is not None and self.hard is None:
            raise ValidationError(f"{field}.swap", self.swap // 2**20, "cgroup v1 limits swap together with "
                                  "memory (memory.memsw): give 'mem' too")
        return replace(self, hierarchy=hierarchy)


def parse_vmem(field: str, desc: object, cgroups: Mapping[str, int] | None = None, pnode: str = "",
               base: VMem | None = None) -> VMem | None:
    """Distem's ``vmem``: {'hierarchy': 'v1'|'v2', 'mem'|'hard_limit', 'soft_limit', 'swap'} in MB.

    Both hierarchies take every key ('mem' and 'hard_limit' are the same limit);
    'max' cancels a limit; ``base``: the current limits, which keys left out keep.
    """
    if desc is None:
        return base
    if not isinstance(desc, Mapping):
        raise ValidationError(field, desc, "expected {'hierarchy': 'v1'|'v2', 'mem'|'hard_limit': MB, "
                              "'soft_limit': MB, 'swap': MB}")
    allowed = {"hierarchy"} | {k for keys in _MEM_KEYS.values() for k in keys}
    check_keys(field, desc, sorted(allowed))
    asked = desc.get("hierarchy", f"v{base.hierarchy}" if base else None)
    hierarchy = resolve_hierarchy(f"{field}.hierarchy", asked, "memory", None)  # the pnode's: in on()
    values = {"hard": base.hard, "soft": base.soft, "swap": base.swap} if base else {}
    for name, keys in _MEM_KEYS.items():
        for key in keys:
            if key in desc:
                values[name] = _limit(f"{field}.{key}", desc[key], parse_size)
    if values.get("hard") == 0:
        raise ValidationError(f"{field}.mem", 0, "a memory limit must be above 0 (or 'max')")
    vmem = VMem(hierarchy=hierarchy, **values)
    return vmem if cgroups is None else vmem.on(field, cgroups, pnode)


# -- disk IO ------------------------------------------------------------------------------

_IO_KEYS = {"read_limit": "read_bps", "write_limit": "write_bps", "read_iops": "read_iops", "write_iops": "write_iops"}


@dataclass(frozen=True, slots=True, kw_only=True)
class IoLimit:
    """Throttling of one whole block device of the pnode; None: no limit."""

    device: str
    devnum: str = ""  # "major:minor", learnt from the pnode before anything is applied
    read_bps: int | None = None
    write_bps: int | None = None
    read_iops: int | None = None
    write_iops: int | None = None

    def to_distem(self) -> dict[str, Any]:
        out: dict[str, Any] = {"device": self.device}
        for key, attr in _IO_KEYS.items():
            value = getattr(self, attr)
            out[key] = "max" if value is None else value
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class VIo:
    """Distem's ``disk_throttling``. v1: blkio.throttle.*_device; v2: io.max."""

    hierarchy: int
    limits: tuple[IoLimit, ...] = ()

    def to_distem(self) -> dict[str, Any]:
        return {"hierarchy": f"v{self.hierarchy}", "limits": [limit.to_distem() for limit in self.limits]}

    def on(self, field: str, cgroups: Mapping[str, int], pnode: str = "") -> VIo:
        """On a pnode with these controllers: through the hierarchy it has io on (0: not chosen yet)."""
        asked = f"v{self.hierarchy}" if self.hierarchy else None
        return replace(self, hierarchy=resolve_hierarchy(f"{field}.hierarchy", asked, "io", cgroups, pnode))


def _iops(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "expected a whole number of operations per second, or 'max'")
    return value


def parse_vio(field: str, desc: object, cgroups: Mapping[str, int] | None = None, pnode: str = "",
              base: VIo | None = None) -> VIo | None:
    """{'hierarchy', 'limits': [{'device', 'read_limit', 'write_limit', 'read_iops', 'write_iops'}]}.

    Rates are bytes/s (a number, or "10MB"); an update names the devices it
    changes and keeps the others' limits and the keys it leaves out.
    """
    if desc is None:
        return base
    if not isinstance(desc, Mapping):
        raise ValidationError(field, desc, "expected {'hierarchy': 'v1'|'v2', 'limits': [{'device': '/dev/...', "
                              "'read_limit': B/s, 'write_limit': B/s}]}")
    check_keys(field, desc, ["hierarchy", "limits"])
    asked = desc.get("hierarchy", f"v{base.hierarchy}" if base else None)
    hierarchy = resolve_hierarchy(f"{field}.hierarchy", asked, "io", None)  # the pnode's: in on()
    entries = desc.get("limits", [])
    if not isinstance(entries, (list, tuple)):
        raise ValidationError(f"{field}.limits", entries, "expected a list of {'device': ..., ...}")
    limits = {limit.device: limit for limit in (base.limits if base else ())}
    for i, entry in enumerate(entries):
        where = f"{field}.limits[{i}]"
        if not isinstance(entry, Mapping):
            raise ValidationError(where, entry, "expected {'device': '/dev/...', 'read_limit': B/s, ...}")
        check_keys(where, entry, ["device", *_IO_KEYS])
        device = entry.get("device")
        if not isinstance(device, str) or not device.startswith("/dev/"):
            raise ValidationError(f"{where}.device", device, "expected a block device path such as '/dev/sda'")
        values: dict[str, int | None] = {}
        for key, attr in _IO_KEYS.items():
            if key in entry:
                parse = _iops if attr.endswith("iops") else (lambda v, f: parse_size(v, f, bare="B"))
                values[attr] = _limit(f"{where}.{key}", entry[key], parse)
                if values[attr] == 0:
                    raise ValidationError(f"{where}.{key}", entry[key], "a limit must be above 0 (or 'max')")
        old = limits.get(device, IoLimit(device=device))
        limits[device] = replace(old, **values)  # type: ignore[arg-type]  # mypy reads **values as the device too
    vio = VIo(hierarchy=hierarchy, limits=tuple(limits.values()))
    return vio if cgroups is None else vio.on(field, cgroups, pnode)
